"""feeds.yaml → frozen dataclasses. Every problem names file, line and field.

The dataclasses below are the contract the rest of the package relies on.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, available_timezones

import yaml
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from aggregator.errors import ConfigError, ConfigProblem

SmtpSecurity = Literal["none", "starttls", "ssl"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class SiteConfig:
    title: str
    url: str  # where output/ is served, ends with "/"
    author: str


@dataclass(frozen=True)
class Defaults:
    interval: timedelta = timedelta(minutes=30)
    feed_items: int = 100
    retention: timedelta = timedelta(days=90)


@dataclass(frozen=True)
class FetchSettings:
    concurrency: int = 10  # requests in flight overall
    per_host: int = 2  # requests in flight per host
    timeout: timedelta = timedelta(seconds=30)  # connect and read, each
    max_bytes: int = 10 * 1024 * 1024  # body-size cap; larger bodies are aborted


@dataclass(frozen=True)
class TopicRule:
    id: str
    title: str
    keywords: tuple[str, ...] = ()  # single terms, word-boundary; "stem*" = prefix
    phrases: tuple[str, ...] = ()  # multi-word, matched as a whole (whitespace-tolerant)
    exclude: tuple[str, ...] = ()  # same syntax as keywords; any match vetoes the topic


@dataclass(frozen=True)
class FeedConfig:
    url: str  # absolute http(s)/file URL; a local path is turned into a file:// URL
    title: str | None = None
    topics: tuple[str, ...] = ()  # topic hints: everything from this source is in these
    interval: timedelta = timedelta(minutes=30)  # effective: per-feed value or the default
    line: int = 0  # where the entry starts in feeds.yaml, for messages


@dataclass(frozen=True)
class DigestConfig:
    id: str
    title: str
    schedule: str  # five-field cron expression
    timezone: str  # IANA name
    to: tuple[str, ...]
    topics: tuple[str, ...] = ()  # empty = all items
    max_items: int = 40
    lookback: timedelta = timedelta(days=1)
    template: str | None = None  # overrides "digest" template base name/path (see render.py)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    sender: str  # the "from" key
    port: int = 587
    security: SmtpSecurity = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # AGGREGATOR_SMTP_PASSWORD only
    timeout: float = 30.0


@dataclass(frozen=True)
class Config:
    path: Path  # absolute path of feeds.yaml
    site: SiteConfig
    output_dir: Path  # absolute
    database_url: str  # SQLAlchemy URL; sqlite paths made absolute
    templates_dir: Path  # absolute; default "templates" beside feeds.yaml
    defaults: Defaults = Defaults()
    fetch: FetchSettings = FetchSettings()
    topics: tuple[TopicRule, ...] = ()
    feeds: tuple[FeedConfig, ...] = ()
    digests: tuple[DigestConfig, ...] = ()
    smtp: SmtpConfig | None = None

    def topic(self, topic_id: str) -> TopicRule | None:
        return next((t for t in self.topics if t.id == topic_id), None)

    def digest(self, digest_id: str) -> DigestConfig | None:
        return next((d for d in self.digests if d.id == digest_id), None)


# ====================================================================== loading
#
# We walk yaml.compose()'s node tree ourselves instead of yaml.safe_load() so that every
# value keeps the line it came from, and so that duplicate keys (which safe_load silently
# resolves to "last one wins") can be reported.

_DEFAULT_DATABASE = "sqlite:///state/aggregator.db"
_ENV_DATABASE = "AGGREGATOR_DATABASE_URL"
_ENV_PASSWORD = "AGGREGATOR_SMTP_PASSWORD"
_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
_ADDR_CHAR = r"[^@\s<>,;\"()\[\]\\]"
_EMAIL = re.compile(rf"{_ADDR_CHAR}+@{_ADDR_CHAR}+")
_HOSTLIKE = re.compile(r"(?i)(www\.[^/]+|[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}/.*)")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SMTP_PORTS: dict[str, int] = {"ssl": 465, "starttls": 587, "none": 25}
_SECURITY: tuple[SmtpSecurity, ...] = ("none", "starttls", "ssl")
_DB_DRIVERS = ("sqlite", "postgresql", "postgresql+psycopg")

_DURATION_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_DURATION_PART = re.compile(r"\s*([0-9]+)\s*([A-Za-z]+)\s*")
_SIZE = re.compile(r"\s*([0-9]+)\s*([kmg]i?b|b)?\s*", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_duration(text: str) -> timedelta:
    """Parse "90s", "15m", "2h", "1d", "1w" or combinations such as "1h30m".

    Units go from largest to smallest, each at most once. A bare number is refused:
    "30" could mean seconds or minutes, and guessing wrong polls 60 times too often.
    """
    s = text.strip()
    hint = 'write e.g. "30m" (units: s, m, h, d, w; combine as "1h30m")'
    if not s:
        raise ValueError(f"empty duration; {hint}")
    if s.isascii() and s.isdigit():
        raise ValueError(f'"{s}" has no unit and a bare number is ambiguous; {hint}')
    total, pos, last = timedelta(), 0, -1
    while pos < len(s):
        match = _DURATION_PART.match(s, pos)
        if match is None:
            raise ValueError(f'cannot read "{s}" as a duration; {hint}')
        number, unit = match.groups()
        if unit not in _DURATION_UNITS:
            raise ValueError(f'unknown unit "{unit}" in "{s}"; {hint}')
        rank = "wdhms".index(unit)
        if rank <= last:
            raise ValueError(f'units in "{s}" must go from largest to smallest, each once; {hint}')
        try:
            total += int(number) * _DURATION_UNITS[unit]
        except (OverflowError, ValueError) as exc:
            raise ValueError(f'duration "{s}" is too large') from exc
        pos, last = match.end(), rank
    return total


def check_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> list[ConfigProblem]:
    """Every problem in the config file; an empty list means it is valid."""
    try:
        load_config(path, environ=environ)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> Config:
    """Read and validate feeds.yaml; raise ConfigError listing every problem found."""
    display = os.fspath(path)
    config_path = Path(os.path.abspath(display))
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(display, 0, "(file)", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([ConfigProblem(display, 0, "(file)", f"cannot read: {reason}")]) from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(display, text, exc)]) from exc
    reader = _ConfigReader(display, config_path.parent, os.environ if environ is None else environ)
    config = reader.config(root, config_path)
    if reader.problems:
        raise ConfigError(sorted(reader.problems, key=lambda p: p.line))
    return config


def _yaml_problem(display: str, text: str, exc: yaml.YAMLError) -> ConfigProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        parts = [p for p in (exc.context, exc.problem) if p]
        return ConfigProblem(display, line, "(yaml)", "invalid YAML: " + ", ".join(parts))
    position = getattr(exc, "position", None)  # ReaderError: bad characters
    line = text.count("\n", 0, position) + 1 if isinstance(position, int) else 0
    return ConfigProblem(display, line, "(yaml)", f"invalid YAML: {exc}")


# ---------------------------------------------------------------- small pure helpers


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    names = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean"}
    names |= {"null": "nothing", "timestamp": "a date"}
    return names.get(str(node.tag).rsplit(":", 1)[-1], "a value")


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _resolve(base: Path, text: str) -> Path:
    return Path(os.path.normpath(base / Path(text).expanduser()))


def _http_url(text: str) -> str:
    """Absolute http(s) URL with lower-case scheme/host, no default port, no fragment."""
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        raise ValueError(f"'{text}' is not an absolute http(s) URL")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValueError(f"'{text}' has a bad port") from exc
    if not host:
        raise ValueError(f"'{text}' has no host")
    netloc = f"[{host}]" if ":" in host else host
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{netloc}" if userinfo else netloc
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _feed_url(text: str, base: Path) -> str:
    """A feed's URL normalised for identity; a local path becomes an absolute file:// URL."""
    if not text:
        raise ValueError("empty URL")
    if any(c.isspace() for c in text):
        raise ValueError(f"'{text}' contains whitespace")
    scheme = urlsplit(text).scheme.lower()
    if not scheme:
        if _HOSTLIKE.fullmatch(text):
            raise ValueError(f"'{text}' has no scheme; did you mean 'https://{text}'?")
        return _resolve(base, text).as_uri()
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError("a file: URL must be absolute (file:///path); or give a plain path")
        return urlunsplit(("file", "", parts.path, parts.query, ""))
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported scheme '{scheme}:'; use http(s)://, file:// or a path")
    return _http_url(text)


def _database_url(text: str, base: Path | None) -> str:
    """Validate a SQLAlchemy URL; make relative sqlite paths absolute against ``base``."""
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise ValueError(f"'{text}' is not a database URL, e.g. {_DEFAULT_DATABASE}") from exc
    if url.drivername not in _DB_DRIVERS:
        raise ValueError(f"unsupported database '{url.drivername}'; use sqlite or postgresql")
    changed = False
    if url.drivername == "postgresql":  # psycopg 3 is the driver we ship, not psycopg2
        url, changed = url.set(drivername="postgresql+psycopg"), True
    database = url.database or ":memory:"  # "sqlite://" has no database: in memory
    special = database == ":memory:" or database.startswith("file:")  # file: = SQLite URI form
    if url.drivername == "sqlite" and base and not special and not os.path.isabs(database):
        url, changed = url.set(database=str(_resolve(base, database))), True
    # Re-rendering changes harmless spellings (":memory:" gets quoted), so only when needed.
    return url.render_as_string(hide_password=False) if changed else text


def _keyword_problem(term: str) -> str | None:
    if any(c.isspace() for c in term):
        return f"terms are single words; put '{term}' under phrases"
    return _exclude_problem(term)


def _exclude_problem(term: str) -> str | None:
    """Exclusions take keywords and phrases alike: a veto list is one list."""
    if not term:
        return "empty term"
    if term == "*":
        return "a lone '*' would match everything"
    if "*" in term[:-1]:
        return f"'*' is only allowed at the end (prefix form, e.g. 'ukrain*'), got '{term}'"
    return None


# ---------------------------------------------------------------- the tree walker


@dataclass
class _Map:
    """A checked YAML mapping: its dotted path, the line naming it, and key → (key, value)."""

    path: str
    line: int
    items: dict[str, tuple[Node, Node]]

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str) -> Node | None:
        pair = self.items.get(key)
        return None if pair is None or _is_null(pair[1]) else pair[1]

    def key_line(self, key: str) -> int:
        pair = self.items.get(key)
        return _line(pair[0]) if pair else self.line


_EMPTY_MAP = _Map("", 0, {})


class _TreeReader:
    """Typed reads of YAML nodes that record every problem instead of stopping at the first.

    Knows nothing about feeds.yaml's schema; _ConfigReader below adds that.
    """

    def __init__(self, display: str) -> None:
        self.display = display
        self.problems: list[ConfigProblem] = []

    def problem(self, line: int, field: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.display, line, field, message))

    # ------------------------------------------------ generic typed readers

    def mapping(
        self,
        node: Node,
        path: str,
        line: int,
        allowed: Sequence[str] | None,
        required: Sequence[str] = (),
    ) -> _Map | None:
        """Check a mapping's shape and keys; ``allowed=None`` takes any key (id → ...)."""
        if not isinstance(node, MappingNode):
            self.problem(_line(node), path, f"expected a mapping, got {_kind(node)}")
            return None
        result = _Map(path, line, {})
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
            elif not isinstance(key_node, ScalarNode) or _is_null(key_node):
                self.problem(_line(key_node), path, f"keys must be names, got {_kind(key_node)}")
            elif key_node.value in result.items:
                first = _line(result.items[key_node.value][0])
                key = key_node.value
                self.problem(
                    _line(key_node), result.field(key), f"duplicate key (first at line {first})"
                )
            else:
                result.items[key_node.value] = (key_node, value_node)
        self._merge(result, merges)
        for key, (key_node, _) in result.items.items():
            if allowed is not None and key not in allowed:
                hint = _did_you_mean(key, allowed) or f" (known keys: {', '.join(allowed)})"
                self.problem(_line(key_node), result.field(key), f"unknown key '{key}'{hint}")
        for key in required:
            if result.get(key) is None:
                what = "is empty" if key in result.items else "is missing"
                self.problem(result.key_line(key), result.field(key), f"required key {what}")
        return result

    def _merge(self, target: _Map, merges: list[Node]) -> None:
        # YAML "<<: *anchor" merge keys: explicit keys win over merged ones.
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.problem(_line(source), target.path, "'<<' must merge a mapping")
                    continue
                for key_node, value_node in source.value:
                    if isinstance(key_node, ScalarNode):
                        target.items.setdefault(key_node.value, (key_node, value_node))

    def section(
        self, parent: _Map, key: str, allowed: Sequence[str] | None, required: Sequence[str] = ()
    ) -> _Map:
        """The mapping under ``key``, or an empty one when it is absent or broken."""
        node = parent.get(key)
        if node is None:
            return _Map(parent.field(key), parent.key_line(key), {})
        found = self.mapping(node, parent.field(key), parent.key_line(key), allowed, required)
        return found or _EMPTY_MAP

    def text(self, node: Node, path: str) -> str | None:
        if not isinstance(node, ScalarNode):
            self.problem(_line(node), path, f"expected a string, got {_kind(node)}")
            return None
        return "" if _is_null(node) else str(node.value).strip()

    def texts(self, node: Node, path: str, *, single_ok: bool = False) -> list[tuple[str, Node]]:
        if single_ok and isinstance(node, ScalarNode):
            value = self.text(node, path)
            return [] if value is None else [(value, node)]
        if not isinstance(node, SequenceNode):
            self.problem(_line(node), path, f"expected a list, got {_kind(node)}")
            return []
        found = ((self.text(item, f"{path}[{i}]"), item) for i, item in enumerate(node.value))
        return [(value, item) for value, item in found if value is not None]

    def integer(self, node: Node, path: str, low: int, high: int | None = None) -> int | None:
        if not (isinstance(node, ScalarNode) and node.tag == _INT_TAG):
            self.problem(_line(node), path, f"expected an integer, got {_kind(node)}")
            return None
        value = int(SafeConstructor().construct_yaml_int(node))
        if value < low or (high is not None and value > high):
            limit = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problem(_line(node), path, f"must be {limit}, got {value}")
            return None
        return value

    def duration(self, node: Node, path: str, minimum: timedelta, label: str) -> timedelta | None:
        value = self.text(node, path)
        if value is None:
            return None
        try:
            result = parse_duration(value)
        except ValueError as exc:
            self.problem(_line(node), path, str(exc))
            return None
        if result < minimum:
            self.problem(_line(node), path, f'must be at least {label}, got "{value}"')
            return None
        return result

    def opt(self, m: _Map, key: str, read: Callable[[Node, str], _T | None], default: _T) -> _T:
        node = m.get(key)
        value = None if node is None else read(node, m.field(key))
        return default if value is None else value


class _ConfigReader(_TreeReader):
    """The feeds.yaml schema: one method per section, each returning its dataclass."""

    def __init__(self, display: str, base: Path, environ: Mapping[str, str]) -> None:
        super().__init__(display)
        self.base, self.environ = base, environ

    def config(self, root: Node | None, path: Path) -> Config:
        top = ("site", "output_dir", "database", "templates", "defaults", "fetch")
        allowed = (*top, "topics", "feeds", "digests", "smtp")
        if root is None:
            self.problem(1, "(file)", "the file is empty; it needs at least 'site' and 'feeds'")
            return self._placeholder(path)
        m = self.mapping(root, "", 1, allowed, required=("site", "feeds"))
        if m is None:
            return self._placeholder(path)
        defaults = self.defaults(m)
        topics, hollow = self.topics(m)
        feeds = self.feeds(m, defaults, {t.id for t in topics})
        hinted = {topic for feed in feeds for topic in feed.topics}
        for topic_id, line in hollow.items():
            if topic_id not in hinted:
                why = "has no keywords or phrases and no feed lists it under topics"
                self.problem(line, f"topics.{topic_id}", f"{why}, so it matches nothing")
        return Config(
            path=path,
            site=self.site(m),
            output_dir=self.opt(m, "output_dir", self.directory, self.base / "output"),
            database_url=self.database(m),
            templates_dir=self.opt(m, "templates", self.directory, self.base / "templates"),
            defaults=defaults,
            fetch=self.fetch(m),
            topics=tuple(topics),
            feeds=tuple(feeds),
            digests=self.digests(m, [t.id for t in topics]),
            smtp=self.smtp(m),
        )

    def _placeholder(self, path: Path) -> Config:
        # Only returned alongside problems, so load_config never hands it out.
        return Config(path, SiteConfig("", "", ""), self.base, "", self.base)

    def directory(self, node: Node, path: str) -> Path | None:
        value = self.text(node, path)
        if value == "":
            self.problem(_line(node), path, "must not be empty")
        return _resolve(self.base, value) if value else None

    def site(self, root: _Map) -> SiteConfig:
        m = self.section(root, "site", ("title", "url", "author"), required=("title", "url"))
        title = self.opt(m, "title", self.text, "")
        url = self.opt(m, "url", self.site_url, "")
        return SiteConfig(title, url, author=self.opt(m, "author", self.text, "") or title)

    def site_url(self, node: Node, path: str) -> str | None:
        value = self.text(node, path)
        if value is None:
            return None
        try:
            url = _http_url(value)
        except ValueError as exc:
            self.problem(_line(node), path, str(exc))
            return None
        if urlsplit(url).query:
            self.problem(_line(node), path, "must not have a query string")
            return None
        return url if url.endswith("/") else url + "/"

    def database(self, root: _Map) -> str:
        node = root.get("database")
        url = _DEFAULT_DATABASE if node is None else self.text(node, "database")
        try:
            resolved = _database_url(url or "", self.base) if url is not None else ""
        except ValueError as exc:
            self.problem(root.key_line("database"), "database", str(exc))
            resolved = ""
        override = self.environ.get(_ENV_DATABASE)
        if not override:
            return resolved
        try:  # used as given: a relative sqlite path stays relative to the working directory
            return _database_url(override, None)
        except ValueError as exc:
            self.problem(0, _ENV_DATABASE, str(exc))
            return ""

    def defaults(self, root: _Map) -> Defaults:
        m = self.section(root, "defaults", ("interval", "feed_items", "retention"))
        d = Defaults()
        return Defaults(
            interval=self.opt(m, "interval", self._poll_interval, d.interval),
            feed_items=self.opt(m, "feed_items", self._positive, d.feed_items),
            retention=self.opt(m, "retention", self._positive_duration, d.retention),
        )

    def _poll_interval(self, node: Node, path: str) -> timedelta | None:
        return self.duration(node, path, timedelta(minutes=1), "1m")

    def _positive_duration(self, node: Node, path: str) -> timedelta | None:
        return self.duration(node, path, timedelta(seconds=1), "1s")

    def _positive(self, node: Node, path: str) -> int | None:
        return self.integer(node, path, 1)

    def fetch(self, root: _Map) -> FetchSettings:
        keys = ("concurrency", "per_host", "timeout", "max_size")
        m = self.section(root, "fetch", keys)
        f = FetchSettings()
        return FetchSettings(
            concurrency=self.opt(m, "concurrency", self._positive, f.concurrency),
            per_host=self.opt(m, "per_host", self._positive, f.per_host),
            timeout=self.opt(m, "timeout", self._positive_duration, f.timeout),
            max_bytes=self.opt(m, "max_size", self._size, f.max_bytes),
        )

    def _size(self, node: Node, path: str) -> int | None:
        if isinstance(node, ScalarNode) and node.tag == _INT_TAG:
            return self.integer(node, path, 1)
        match = _SIZE.fullmatch(node.value) if isinstance(node, ScalarNode) else None
        if match is None:
            self.problem(_line(node), path, 'expected a size like "10MB", "512KB" or bytes')
            return None
        size = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "")[:1].lower()]
        if size < 1:
            self.problem(_line(node), path, "must be at least 1 byte")
            return None
        return size

    def topics(self, root: _Map) -> tuple[list[TopicRule], dict[str, int]]:
        """The topic rules, and (id → line) of those with no keywords or phrases."""
        rules: list[TopicRule] = []
        hollow: dict[str, int] = {}
        m = self.section(root, "topics", None)
        for topic_id, (key_node, value_node) in m.items.items():
            path, line = m.field(topic_id), _line(key_node)
            self.slug(topic_id, path, line, "topic")
            body = _Map(path, line, {}) if _is_null(value_node) else None
            allowed = ("title", "keywords", "phrases", "exclude")
            body = body or self.mapping(value_node, path, line, allowed) or _Map(path, line, {})
            keywords = self.terms(body, "keywords", _keyword_problem)
            phrases = self.terms(body, "phrases", _phrase_problem)
            exclude = self.terms(body, "exclude", _exclude_problem)
            if not keywords and not phrases:
                hollow[topic_id] = line
            title = self.opt(body, "title", self.text, "") or topic_id
            rules.append(TopicRule(topic_id, title, keywords, phrases, exclude))
        return rules, hollow

    def terms(self, m: _Map, key: str, check: Callable[[str], str | None]) -> tuple[str, ...]:
        node = m.get(key)
        found: list[str] = []
        for i, (term, item) in enumerate(self.texts(node, m.field(key)) if node else []):
            message = check(term)
            if message:
                self.problem(_line(item), f"{m.field(key)}[{i}]", message)
            else:
                found.append(term)
        return tuple(found)

    def slug(self, value: str, path: str, line: int, what: str) -> None:
        if not _SLUG.fullmatch(value):
            fixed = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")
            hint = f"; e.g. '{fixed}'" if fixed else ""
            rule = "lowercase letters, digits and '-', not starting with '-'"
            self.problem(line, path, f"{what} ids name files, so they must be {rule}{hint}")

    def topic_refs(self, m: _Map, known: Sequence[str] | set[str]) -> tuple[str, ...]:
        node = m.get("topics")
        refs: list[str] = []
        for i, (ref, item) in enumerate(self.texts(node, m.field("topics")) if node else []):
            if ref in known:
                refs.append(ref)
                continue
            listing = ", ".join(sorted(known)) if known else "none are defined"
            hint = _did_you_mean(ref, known)
            message = f"unknown topic '{ref}'{hint} (known topics: {listing})"
            self.problem(_line(item), f"{m.field('topics')}[{i}]", message)
        return tuple(refs)

    def feeds(self, root: _Map, defaults: Defaults, known: set[str]) -> list[FeedConfig]:
        node = root.get("feeds")
        if node is None:
            return []
        if not isinstance(node, SequenceNode):
            self.problem(_line(node), "feeds", f"expected a list, got {_kind(node)}")
            return []
        feeds = [self.feed(i, item, defaults, known) for i, item in enumerate(node.value)]
        seen: dict[str, int] = {}  # normalised URL → index of its first occurrence
        for i, feed in enumerate(feeds):
            if feed.url in seen:
                first = seen[feed.url]
                message = f"duplicate of feeds[{first}] (line {feeds[first].line})"
                self.problem(feed.line, f"feeds[{i}].url", message)
            elif feed.url:
                seen[feed.url] = i
        return [feed for feed in feeds if feed.url]

    def feed(self, i: int, item: Node, defaults: Defaults, known: set[str]) -> FeedConfig:
        """One feeds[] item; its url is "" when it is missing or invalid (already reported)."""
        path, line = f"feeds[{i}]", _line(item)
        if isinstance(item, ScalarNode):
            m = _Map(path, line, {"url": (item, item)})
        else:
            allowed = ("url", "title", "topics", "interval")
            m = self.mapping(item, path, line, allowed, ("url",)) or _Map(path, line, {})
        return FeedConfig(
            url=self.opt(m, "url", self._feed_url, ""),
            title=self.opt(m, "title", self.text, "") or None,
            topics=self.topic_refs(m, known),
            interval=self.opt(m, "interval", self._poll_interval, defaults.interval),
            line=line,
        )

    def _feed_url(self, node: Node, path: str) -> str | None:
        raw = self.text(node, path)
        try:
            return None if raw is None else _feed_url(raw, self.base)
        except ValueError as exc:
            self.problem(_line(node), path, str(exc))
            return None

    def digests(self, root: _Map, known: list[str]) -> tuple[DigestConfig, ...]:
        digests: list[DigestConfig] = []
        m = self.section(root, "digests", None)
        allowed = ("title", "topics", "schedule", "timezone", "to", "max_items", "lookback")
        for digest_id, (key_node, value_node) in m.items.items():
            path, line = m.field(digest_id), _line(key_node)
            self.slug(digest_id, path, line, "digest")
            body = self.mapping(value_node, path, line, (*allowed, "template"), ("schedule", "to"))
            if body is None:
                continue
            timezone = self.opt(body, "timezone", self.timezone, "UTC")
            digests.append(
                DigestConfig(
                    id=digest_id,
                    title=self.opt(body, "title", self.text, "") or digest_id,
                    schedule=self.opt(body, "schedule", self.schedule, ""),
                    timezone=timezone,
                    to=self.recipients(body),
                    topics=self.topic_refs(body, known),
                    max_items=self.opt(body, "max_items", self._positive, 40),
                    lookback=self.opt(body, "lookback", self._positive_duration, timedelta(days=1)),
                    template=self.opt(body, "template", self.text, "") or None,
                )
            )
        return tuple(digests)

    def schedule(self, node: Node, path: str) -> str | None:
        value = self.text(node, path)
        if value is None:
            return None
        expression = " ".join(value.split())
        try:
            CronTrigger.from_crontab(expression, timezone="UTC")
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            example = 'e.g. "0 7 * * *" for 07:00 daily'
            self.problem(_line(node), path, f"bad cron expression '{value}': {exc} ({example})")
            return None
        return expression

    def timezone(self, node: Node, path: str) -> str | None:
        value = self.text(node, path)
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (KeyError, ValueError, OSError):
            hint = _did_you_mean(value, sorted(available_timezones()))
            hint = hint or " (use an IANA name such as 'Europe/Kyiv' or 'UTC')"
            self.problem(_line(node), path, f"unknown time zone '{value}'{hint}")
            return None
        return value

    def recipients(self, m: _Map) -> tuple[str, ...]:
        node = m.get("to")
        found: list[str] = []
        items = self.texts(node, m.field("to"), single_ok=True) if node else []
        for i, (address, item) in enumerate(items):
            field_path = f"{m.field('to')}[{i}]"
            if not _EMAIL.fullmatch(address):
                self.problem(_line(item), field_path, f"'{address}' is not an email address")
            elif address in found:
                self.problem(_line(item), field_path, f"'{address}' is listed twice")
            else:
                found.append(address)
        if node is not None and not items and isinstance(node, SequenceNode):
            self.problem(_line(node), m.field("to"), "needs at least one address")
        return tuple(found)

    def smtp(self, root: _Map) -> SmtpConfig | None:
        if root.get("smtp") is None:
            return None
        keys = ("host", "port", "security", "username", "from", "timeout", "password")
        m = self.section(root, "smtp", keys, required=("host", "from"))
        if "password" in m.items:
            message = f"don't put the password in the file; set {_ENV_PASSWORD} instead"
            self.problem(m.key_line("password"), m.field("password"), message)
        security: SmtpSecurity = self.opt(m, "security", self.security, "starttls")
        timeout = self.opt(m, "timeout", self._positive_duration, timedelta(seconds=30))
        return SmtpConfig(
            host=self.opt(m, "host", self.text, ""),
            sender=self.opt(m, "from", self.sender, ""),
            port=self.opt(
                m, "port", lambda n, p: self.integer(n, p, 1, 65535), _SMTP_PORTS[security]
            ),
            security=security,
            username=self.opt(m, "username", self.text, "") or None,
            password=self.environ.get(_ENV_PASSWORD) or None,
            timeout=timeout.total_seconds(),
        )

    def security(self, node: Node, path: str) -> SmtpSecurity | None:
        value = self.text(node, path)
        for choice in _SECURITY:
            if value == choice:
                return choice
        if value is not None:
            hint = _did_you_mean(value, _SECURITY) or " (choose none, starttls or ssl)"
            self.problem(_line(node), path, f"unknown security '{value}'{hint}")
        return None

    def sender(self, node: Node, path: str) -> str | None:
        value = self.text(node, path)
        if value is None:
            return None
        _, address = parseaddr(value)
        if any(c in value for c in "\r\n") or not _EMAIL.fullmatch(address):
            example = '"Name <addr@example.org>" or "addr@example.org"'
            self.problem(_line(node), path, f"'{value}' is not an email address; use {example}")
            return None
        return value


def _phrase_problem(phrase: str) -> str | None:
    if not phrase:
        return "empty phrase"
    if "*" in phrase:
        return "phrases are matched literally; '*' is only for keywords"
    return None
