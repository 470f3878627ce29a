"""Screenshots of the default digest mail, as a phone (375 px) and a mail pane (600 px) show it.

    python docs/screenshots.py              # writes docs/img/digest-375.png and digest-600.png
    python docs/screenshots.py --corpus     # real news-week items, into a temporary folder

The committed images use invented items (tests/test_digest_look.py's synthetic issue): the
news-week corpus is for development only and not ours to republish, so ``--corpus`` shots
are for looking at locally and are written outside the repository unless --out says otherwise.
Needs Chromium (chromium, chromium-browser or google-chrome on PATH).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for the issue builders in tests/

from aggregator.render import make_environment, render_issue  # noqa: E402
from tests.test_digest_look import (  # noqa: E402
    CHROMIUM_TIMEOUT,
    DIGEST,
    SITE,
    chromium_command,
    corpus_issue,
    find_chromium,
    measure,
    synthetic_issue,
)

WIDTHS = (375, 600)


def screenshot(binary: str, page: str, width: int, target: Path) -> None:
    """Save the whole of ``page`` at ``width`` CSS pixels as the PNG ``target``."""
    height = measure(binary, page, width).scroll_height
    with tempfile.TemporaryDirectory(prefix="digest-shot-") as tmp:
        source = Path(tmp) / "digest.html"
        source.write_text(page, encoding="utf-8")
        command = chromium_command(
            binary,
            Path(tmp) / "profile",
            f"--window-size={width},{height}",
            f"--screenshot={target}",
            "--virtual-time-budget=5000",
            source.as_uri(),
        )
        subprocess.run(command, capture_output=True, timeout=CHROMIUM_TIMEOUT, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="store_true", help="use real news-week items")
    parser.add_argument("--items", type=int, default=12, help="items in the issue (default 12)")
    parser.add_argument("--out", type=Path, help="folder for the PNGs")
    args = parser.parse_args(argv)
    binary = find_chromium()
    if binary is None:
        print("Chromium not found on PATH", file=sys.stderr)
        return 1
    out: Path = args.out or (
        Path(tempfile.mkdtemp(prefix="digest-corpus-")) if args.corpus else ROOT / "docs" / "img"
    )
    out.mkdir(parents=True, exist_ok=True)
    issue = corpus_issue(args.items) if args.corpus else synthetic_issue(args.items, more=6)
    rendered = render_issue(
        issue, digest=DIGEST, site=SITE, env=make_environment(ROOT / "templates")
    )
    for width in WIDTHS:
        target = out / f"digest-{width}.png"
        screenshot(binary, rendered.html, width, target)
        print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
