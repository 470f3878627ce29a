"""aggregator: a polite feed aggregator and newsletter builder.

The public entry point is :func:`make_aggregator`; every deliberate error is an
:class:`AggregatorError` (see :mod:`aggregator.errors` for the whole tree).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .errors import (
    AggregatorError,
    ConfigError,
    DeliveryError,
    FetchError,
    ParseError,
    RenderError,
    StorageError,
    UnknownIdError,
)

try:
    __version__ = version("aggregator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from .app import Aggregator, make_aggregator


def __getattr__(name: str) -> Any:
    # Imported on first use: a parse worker process imports aggregator.parse_pool, and
    # should not pay for SQLAlchemy, httpx, Jinja2 and MJML that it never uses.
    if name in ("Aggregator", "make_aggregator"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Aggregator",
    "AggregatorError",
    "ConfigError",
    "DeliveryError",
    "FetchError",
    "ParseError",
    "RenderError",
    "StorageError",
    "UnknownIdError",
    "__version__",
    "make_aggregator",
]
