"""Does the fast parse path agree with feedparser, and how much faster is it?

    python benchmarks/parse_agreement.py [--show N]

For every document of ``../shared/corpus/feeds`` and ``../shared/corpus/feedparser-tests``
(skipped with a message when absent), parses it twice through ``aggregator.parse``: once
as shipped (the fast path where it accepts the document, feedparser otherwise) and once
with the fast path switched off (feedparser always). Prints how many documents the fast
path took, and of those how many give a different ``ParsedFeed``: feed fields, and per
entry the id, link, title, summary, content, dates, author and categories. ``--show N``
prints the first N differences.

Then times both on the farm's generated feeds (``benchmarks/farm.py``: ~100 KB each, RSS
and Atom, full HTML bodies) and on the real corpus feeds, in this process, medians of 3,
and prints the ratio.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from aggregator import fastparse, parse  # noqa: E402
from aggregator.errors import ParseError  # noqa: E402
from aggregator.models import ParsedFeed  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
URL = "https://example.org/feed.xml"


@contextmanager
def feedparser_only() -> Iterator[None]:
    with mock.patch.object(parse, "fast_document", return_value=None):
        yield


def documents() -> list[Path]:
    found = sorted(p for p in (CORPUS / "feeds").iterdir() if p.is_file())
    tests = CORPUS / "feedparser-tests"
    found += sorted(
        p for p in tests.rglob("*") if p.is_file() and p.suffix in (".xml", ".rdf", ".atom")
    )
    return found


def parsed(content: bytes) -> ParsedFeed | str:
    try:
        return parse.parse_bytes(content, url=URL)
    except ParseError as exc:
        return f"ParseError: {exc}"


def differences(fast: ParsedFeed | str, slow: ParsedFeed | str) -> list[str]:
    if isinstance(fast, str) or isinstance(slow, str):
        return [] if fast == slow else [f"outcome: {fast!s:.80} | {slow!s:.80}"]
    found = [
        f"feed.{f.name}: {getattr(fast, f.name)!r:.100} | {getattr(slow, f.name)!r:.100}"
        for f in fields(ParsedFeed)
        if f.name != "entries" and getattr(fast, f.name) != getattr(slow, f.name)
    ]
    if len(fast.entries) != len(slow.entries):
        found.append(f"entry count: {len(fast.entries)} | {len(slow.entries)}")
    for a, b in zip(fast.entries, slow.entries, strict=False):
        for f in fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if x != y:
                found.append(f"entry.{f.name}: {_around_difference(x, y)}")
    return found


def _around_difference(x: object, y: object) -> str:
    if not (isinstance(x, str) and isinstance(y, str)):
        return f"{x!r:.100} | {y!r:.100}"
    pairs = enumerate(zip(x, y, strict=False))
    at = next((i for i, (a, b) in pairs if a != b), min(len(x), len(y)))
    start = max(at - 30, 0)
    return f"…{x[start : at + 50]!r} | …{y[start : at + 50]!r}"


def agreement(paths: list[Path], show: int) -> None:
    taken = identical = equivalent = 0
    shown = 0
    for path in paths:
        content = path.read_bytes()
        if fastparse.fast_document(content, http_charset=None) is None:
            continue
        taken += 1
        fast = parsed(content)
        with feedparser_only():
            slow = parsed(content)
        if not differences(fast, slow):
            identical += 1
            continue
        diff = differences(canonical(fast), canonical(slow))
        equivalent += not diff
        for line in diff:
            if shown < show:
                shown += 1
                print(f"  {path.relative_to(CORPUS)}: {line}")
    differing = taken - identical - equivalent
    print(
        f"agreement: {len(paths)} documents; the fast path took {taken}: {identical} parse "
        f"identically to feedparser, {equivalent} to equivalent HTML (attribute order, "
        f"whitespace), {differing} differ"
    )


_TAG = re.compile(r"<([a-z0-9]+)((?:\s+[a-z-]+=\"[^\"]*\")*)\s*(/?)>")
_ATTRIBUTE = re.compile(r'[a-z-]+="[^"]*"')


def canonical(result: ParsedFeed | str) -> ParsedFeed | str:
    """The same feed with its HTML compared as HTML: attributes in name order (feedparser's
    sanitizer sorts them), whitespace runs as one space."""
    if isinstance(result, str):
        return result

    def html(text: str) -> str:
        def tag(match: re.Match[str]) -> str:
            attributes = sorted(_ATTRIBUTE.findall(match.group(2)))
            return f"<{match.group(1)}{''.join(' ' + a for a in attributes)}{match.group(3)}>"

        return " ".join(_TAG.sub(tag, text).split())

    entries = tuple(
        replace(e, summary=html(e.summary), content=html(e.content)) for e in result.entries
    )
    return replace(result, entries=entries)


def timed(run: Callable[[], None]) -> float:
    times = []
    for _ in range(3):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return statistics.median(times)


def speed(label: str, bodies: list[bytes]) -> None:
    def run() -> None:
        for body in bodies:
            parsed(body)

    fast = timed(run)
    with feedparser_only():
        slow = timed(run)
    size = sum(len(b) for b in bodies) / 1e6
    print(
        f"{label}: {len(bodies)} documents, {size:.1f} MB: feedparser {slow:.2f} s, "
        f"as shipped {fast:.2f} s ({slow / fast:.1f}x)"
    )


def farm_bodies(count: int = 60) -> list[bytes]:
    import farm

    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    bodies = []
    for index in range(count):
        spec = farm.make_feed(index, seed=1, anchor=anchor, size_kb=100)
        render = farm.render_rss if spec.kind == "rss" else farm.render_atom
        bodies.append(render(spec, URL))
    return bodies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show", type=int, default=20, help="differences to print")
    args = parser.parse_args()
    if not (CORPUS / "feeds").is_dir():
        print(f"skipped: {CORPUS} is absent")
        return 0
    paths = documents()
    agreement(paths, args.show)
    speed("farm feeds", farm_bodies())
    speed("real corpus feeds", [p.read_bytes() for p in sorted((CORPUS / "feeds").iterdir())])
    return 0


if __name__ == "__main__":
    sys.exit(main())
