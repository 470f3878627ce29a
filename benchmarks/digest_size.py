"""How big the digest mail's HTML gets: bytes for 10/50/200-item issues, with and without the
byte budget (``max_html_bytes``, default 90 000: Gmail clips past ~102 KB), and per item.

    python benchmarks/digest_size.py

Two kinds of issue, each item with a 280-character summary: "latin" (English text, the
fixture of tests/test_render.py) and "mixed" (English and Ukrainian titles, long and
unbreakable URLs, "also" lines: tests/test_digest_look.py's synthetic issue); Cyrillic costs
two bytes a character in UTF-8.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for the issue builders in tests/

from aggregator.models import DigestIssue  # noqa: E402
from aggregator.render import make_environment, render_issue  # noqa: E402
from tests.test_digest_look import DIGEST, SITE, synthetic_issue  # noqa: E402
from tests.test_render import big_issue  # noqa: E402

COUNTS = (10, 50, 200)
UNLIMITED = 10**9


def measure(issue: DigestIssue, budget: int) -> tuple[int, int, int, float]:
    """(HTML bytes, items kept, items moved to ``more``, seconds) for one render."""
    env = make_environment(ROOT / "templates")
    started = time.perf_counter()
    rendered = render_issue(
        issue, digest=replace(DIGEST, max_html_bytes=budget), site=SITE, env=env
    )
    elapsed = time.perf_counter() - started
    size = len(rendered.html.encode("utf-8"))
    return size, len(rendered.issue.items), rendered.issue.more, elapsed


def report(name: str, build: Callable[[int], DigestIssue]) -> None:
    empty = measure(build(0), UNLIMITED)[0]
    marginal = (measure(build(200), UNLIMITED)[0] - measure(build(50), UNLIMITED)[0]) / 150
    print(f"\n{name}: no items: {empty:,} bytes; each item past 50 adds {marginal:.0f} bytes")
    print(
        f"{'items':>6} {'budget':>10} {'bytes':>8} {'kept':>5} {'more':>5} {'per item':>9} {'s':>6}"
    )
    for count in COUNTS:
        for budget in (UNLIMITED, DIGEST.max_html_bytes):
            size, kept, more, seconds = measure(build(count), budget)
            per_item = (size - empty) / kept if kept else 0.0  # section headings included
            label = "none" if budget == UNLIMITED else f"{budget:,}"
            print(
                f"{count:>6} {label:>10} {size:>8,} {kept:>5} {more:>5} {per_item:>9.0f} "
                f"{seconds:>6.2f}"
            )


def main() -> int:
    report("latin", big_issue)
    report("mixed", synthetic_issue)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
