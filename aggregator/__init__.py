"""aggregator: a polite feed aggregator and newsletter builder.

The public entry point is :func:`make_aggregator`; every deliberate error is an
:class:`AggregatorError` (see :mod:`aggregator.errors` for the whole tree).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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

from .app import Aggregator, make_aggregator  # after __version__: cli imports it from here

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
