"""Every exception aggregator raises on purpose, in one tree.

    AggregatorError
    ├── ConfigError      feeds.yaml is missing, unreadable or invalid (carries every problem)
    ├── FetchError       a feed could not be retrieved (carries the URL)
    ├── ParseError       retrieved bytes are not a usable feed (carries the URL)
    ├── StorageError     the database failed; wraps the SQLAlchemy error at the store boundary
    │   ├── AlreadyRunningError  another `aggregator run` holds this state's (SQLite) lock
    │   └── NotEmptyError        `db copy` into a database that already holds a state
    ├── RenderError      a template or MJML failed to render
    ├── DeliveryError    SMTP refused or could not be reached (``permanent`` for a 5xx refusal)
    ├── BadTokenError    an unsubscribe link that is malformed, altered or signed with another key
    └── UnknownIdError   a command named a digest or topic that feeds.yaml does not define

Callers that want "anything aggregator reports" catch ``AggregatorError``; anything
else escaping is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.urls import public_url


class AggregatorError(Exception):
    """Root of every error aggregator raises deliberately."""


@dataclass(frozen=True)
class ConfigProblem:
    """One mistake in a config file, located precisely enough to fix it."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class ConfigError(AggregatorError):
    """The configuration is invalid; ``problems`` lists every mistake found."""

    def __init__(self, problems: list[ConfigProblem] | tuple[ConfigProblem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class FetchError(AggregatorError):
    """A feed could not be retrieved.

    ``retry_after`` is the server's Retry-After header, verbatim, when it sent one
    (typically with 429 or 503): polling honours it before its own backoff.
    """

    def __init__(
        self, url: str, message: str, *, status: int | None = None, retry_after: str | None = None
    ) -> None:
        self.url = url
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"{public_url(url)}: {message}")  # messages are logged and shown


class ParseError(AggregatorError):
    """Retrieved content is not a feed aggregator can use."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(f"{public_url(url)}: {message}")


class StorageError(AggregatorError):
    """The database failed; the original exception is chained as ``__cause__``."""


class RenderError(AggregatorError):
    """A digest template or its MJML could not be rendered."""


class DeliveryError(AggregatorError):
    """A message could not be handed to the SMTP server.

    ``permanent`` when the server refused for good (5xx) rather than for now (4xx, a
    dropped connection, a timeout): only then is a recipient given up on.
    ``recipient_only`` when the failure concerns one recipient, not the server or session.
    """

    def __init__(
        self, message: str, *, permanent: bool = False, recipient_only: bool = False
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.recipient_only = recipient_only


class BadTokenError(AggregatorError):
    """An unsubscribe token is malformed, was tampered with, or was signed with another key."""


class UnknownIdError(AggregatorError):
    """A command named a digest or topic id that feeds.yaml does not define (a user error)."""


class AlreadyRunningError(StorageError):
    """Another daemon holds the state's lock; the message names it where it can."""


class NotEmptyError(StorageError):
    """``db copy`` was pointed at a database that already holds rows (a user error)."""
