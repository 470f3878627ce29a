"""The W3C Feed Validator (offline copy in ../shared/validators/feedvalidator), as a function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

VALIDATOR = Path(__file__).resolve().parents[2] / "shared" / "validators" / "feedvalidator"
# What the validator says of any feed served somewhere other than its rel="self" URL.
SELF_REFERENCE = "Self reference doesn't match document location"


def _validator() -> Any:
    if not (VALIDATOR / "feedvalidator").is_dir():
        pytest.skip(f"the W3C Feed Validator is not at {VALIDATOR} (../shared is absent)")
    if str(VALIDATOR) not in sys.path:
        sys.path.insert(0, str(VALIDATOR))
    import feedvalidator  # type: ignore[import-not-found]

    return feedvalidator


def feed_problems(data: bytes, url: str) -> list[str]:
    """Every error and warning the validator reports at the online validator's level
    ("AA") for ``data`` served at ``url``, bar the self-reference note."""
    validator = _validator()
    from feedvalidator import compatibility  # type: ignore[import-not-found]
    from feedvalidator.formatter.text_plain import Formatter  # type: ignore[import-not-found]

    try:
        events = validator.validateString(data, firstOccurrenceOnly=1, base=url)["loggedEvents"]
    except validator.logging.ValidationFailure as failure:
        events = [failure.event]
    messages = list(Formatter(compatibility.AA(events)))
    return [m for m in messages if SELF_REFERENCE not in m]
