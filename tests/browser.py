"""Headless Chromium for the layout and front-page tests: found, started, or skipped."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_TIMEOUT = 60


def find_chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def chromium_command(binary: str, profile: Path, *extra: str) -> list[str]:
    """A headless Chromium that touches nothing outside ``profile`` and the network not at all."""
    return [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *extra,
    ]


@pytest.fixture(scope="session")
def chromium() -> str:
    """The browser's path; a skip on a plain clone, a failure in CI (which installs it)."""
    binary = find_chromium()
    if binary is None:
        missing = f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)})"
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; .ci/run installs it, so CI must have it")
        pytest.skip(f"{missing}; CI installs it")
    return binary
