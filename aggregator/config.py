"""feeds.yaml → frozen dataclasses (``settings.py``, re-exported here). Every problem
names file, line and field."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from yaml.nodes import Node, ScalarNode, SequenceNode

from aggregator.config_topics import TopicsReader
from aggregator.errors import ConfigError, ConfigProblem, UnknownIdError
from aggregator.identity import feed_form
from aggregator.settings import (
    DEFAULT_TOPIC_THRESHOLD,
    Config,
    Defaults,
    DigestConfig,
    FeedConfig,
    FetchSettings,
    SiteConfig,
    SmtpConfig,
    SmtpSecurity,
    TopicRule,
)
from aggregator.yamlnodes import (
    NodeMap,
    compose,
    is_email_address,
    is_null,
    kind_of,
    line_of,
    parse_http_url,
    parse_url_or_path,
    resolve_path,
)
from aggregator.yamlnodes import parse_duration as parse_duration  # public API, re-exported

__all__ = [
    "DEFAULT_TOPIC_THRESHOLD",
    "Config",
    "Defaults",
    "DigestConfig",
    "FeedConfig",
    "FetchSettings",
    "SiteConfig",
    "SmtpConfig",
    "SmtpSecurity",
    "TopicRule",
    "check_config",
    "load_config",
    "parse_duration",
    "require_digest",
]


# ====================================================================== loading
#
# The generic node walking (lines, duplicate keys, typed reads) is in aggregator.yamlnodes.

_DEFAULT_DATABASE = "sqlite:///state/aggregator.db"
_ENV_DATABASE = "AGGREGATOR_DATABASE_URL"
_ENV_PASSWORD = "AGGREGATOR_SMTP_PASSWORD"
ENV_SECRET_KEY = "AGGREGATOR_SECRET_KEY"
MIN_SECRET_KEY_LENGTH = 16
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")  # BCP 47, the usual forms
_SMTP_PORTS: dict[str, int] = {"ssl": 465, "starttls": 587, "none": 25}
_SECURITY: tuple[SmtpSecurity, ...] = ("none", "starttls", "ssl")
_DB_DRIVERS = ("sqlite", "postgresql", "postgresql+psycopg")


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
        data = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(display, 0, "(file)", "no such file")]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigProblem(display, 0, "(file)", f"cannot read: {reason}")]) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = (
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); "
            "save the file as UTF-8"
        )
        raise ConfigError([ConfigProblem(display, line, "(file)", message)]) from exc
    root = compose(text, display)
    reader = _ConfigReader(display, config_path.parent, os.environ if environ is None else environ)
    config = reader.config(root, config_path)
    if reader.problems:
        raise ConfigError(sorted(reader.problems, key=lambda p: p.line))
    return config


# ---------------------------------------------------------------- small pure helpers


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
        url, changed = url.set(database=str(resolve_path(base, database))), True
    # Re-rendering changes harmless spellings (":memory:" gets quoted), so only when needed.
    return url.render_as_string(hide_password=False) if changed else text


class _ConfigReader(TopicsReader):
    """The feeds.yaml schema: one method per section, each returning its dataclass."""

    def __init__(self, display: str, base: Path, environ: Mapping[str, str]) -> None:
        super().__init__(display)
        self.base, self.environ = base, environ

    def config(self, root: Node | None, path: Path) -> Config:
        top = ("site", "output_dir", "state_dir", "database", "templates", "defaults", "fetch")
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
                why = "has no keywords, phrases or weak terms and no feed lists it under topics"
                self.problem(line, f"topics.{topic_id}", f"{why}, so it matches nothing")
        return Config(
            path=path,
            site=self.site(m),
            output_dir=self.opt(m, "output_dir", self.directory, self.base / "output"),
            database_url=self.database(m),
            templates_dir=self.opt(m, "templates", self.directory, self.base / "templates"),
            state_dir=self.opt(m, "state_dir", self.directory, self.base / "state"),
            defaults=defaults,
            fetch=self.fetch(m),
            topics=tuple(topics),
            feeds=tuple(feeds),
            digests=self.digests(m, [t.id for t in topics]),
            smtp=self.smtp(m),
            secret_key=self.secret_key(),
        )

    def secret_key(self) -> bytes | None:
        value = self.environ.get(ENV_SECRET_KEY) or None
        if value is not None and len(value) < MIN_SECRET_KEY_LENGTH:
            why = f"too short: use at least {MIN_SECRET_KEY_LENGTH} random characters"
            self.problem(0, ENV_SECRET_KEY, f"{why}, e.g. `openssl rand -base64 32`")
        return value.encode("utf-8") if value else None

    def _placeholder(self, path: Path) -> Config:
        # Only returned alongside problems, so load_config never hands it out.
        return Config(path, SiteConfig("", "", ""), self.base, "", self.base)

    def directory(self, node: Node, path: str) -> Path | None:
        value = self.text(node, path)
        if value == "":
            self.problem(line_of(node), path, "must not be empty")
        return resolve_path(self.base, value) if value else None

    def site(self, root: NodeMap) -> SiteConfig:
        keys = ("title", "url", "author", "app_url", "stories", "hub", "language")
        m = self.section(root, "site", keys, required=("title", "url"))
        title = self.opt(m, "title", self.text, "")
        url = self.opt(m, "url", self.site_url, "")
        return SiteConfig(
            title,
            url,
            author=self.opt(m, "author", self.text, "") or title,
            app_url=self.opt(m, "app_url", self.site_url, "") or url,
            stories=self.opt(m, "stories", self.story_mode, "articles"),
            hub=self.opt(m, "hub", self.hub_url, None),
            language=self.opt(m, "language", self.language_tag, None),
        )

    def hub_url(self, node: Node, path: str) -> str | None:
        value = self.text(node, path)
        try:
            return None if value is None else parse_http_url(value)
        except ValueError as exc:
            self.problem(line_of(node), path, str(exc))
            return None

    def language_tag(self, node: Node, path: str) -> str | None:
        value = self.text(node, path)
        if value is not None and not _LANGUAGE_TAG.fullmatch(value):
            self.problem(line_of(node), path, f'"{value}" is not a language tag like "en" or "uk"')
            return None
        return value

    def site_url(self, node: Node, path: str) -> str | None:
        value = self.text(node, path)
        if value is None:
            return None
        try:
            url = parse_http_url(value)
        except ValueError as exc:
            self.problem(line_of(node), path, str(exc))
            return None
        if urlsplit(url).query:
            self.problem(line_of(node), path, "must not have a query string")
            return None
        return url if url.endswith("/") else url + "/"

    def database(self, root: NodeMap) -> str:
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

    def defaults(self, root: NodeMap) -> Defaults:
        keys = ("interval", "feed_items", "retention", "adaptive")
        m = self.section(root, "defaults", keys)
        d = Defaults()
        return Defaults(
            interval=self.opt(m, "interval", self._poll_interval, d.interval),
            feed_items=self.opt(m, "feed_items", self.positive, d.feed_items),
            retention=self.opt(m, "retention", self._positive_duration, d.retention),
            adaptive=self.opt(m, "adaptive", self.boolean, d.adaptive),
        )

    def _poll_interval(self, node: Node, path: str) -> timedelta | None:
        return self.duration(node, path, timedelta(minutes=1), "1m")

    def _positive_duration(self, node: Node, path: str) -> timedelta | None:
        return self.duration(node, path, timedelta(seconds=1), "1s")

    def fetch(self, root: NodeMap) -> FetchSettings:
        keys = (
            "concurrency",
            "per_host",
            "timeout",
            "max_size",
            "allow_private",
            "min_interval",
            "parse_timeout",
            "lease",
        )
        m = self.section(root, "fetch", keys)
        f = FetchSettings()
        return FetchSettings(
            concurrency=self.opt(m, "concurrency", self.positive, f.concurrency),
            per_host=self.opt(m, "per_host", self.positive, f.per_host),
            timeout=self.opt(m, "timeout", self._positive_duration, f.timeout),
            max_bytes=self.opt(m, "max_size", self.size, f.max_bytes),
            allow_private=self.opt(m, "allow_private", self.boolean, f.allow_private),
            min_interval=self.opt(m, "min_interval", self._positive_duration, f.min_interval),
            parse_timeout=self.opt(m, "parse_timeout", self._positive_duration, f.parse_timeout),
            lease=self.opt(m, "lease", self._positive_duration, f.lease),
        )

    def feeds(self, root: NodeMap, defaults: Defaults, known: set[str]) -> list[FeedConfig]:
        node = root.get("feeds")
        if node is None:
            return []
        if not isinstance(node, SequenceNode):
            self.problem(line_of(node), "feeds", f"expected a list, got {kind_of(node)}")
            return []
        feeds = [self.feed(i, item, defaults, known) for i, item in enumerate(node.value)]
        seen: dict[str, int] = {}  # feed_form(URL) → index of its first occurrence
        for i, feed in enumerate(feeds):
            form = feed_form(feed.url)
            if form in seen:
                first = seen[form]
                message = f"duplicate of feeds[{first}] (line {feeds[first].line})"
                self.problem(feed.line, f"feeds[{i}].url", message)
            elif feed.url:
                seen[form] = i
        return [feed for feed in feeds if feed.url]

    def feed(self, i: int, item: Node, defaults: Defaults, known: set[str]) -> FeedConfig:
        """One feeds[] item; its url is "" when it is missing or invalid (already reported)."""
        path, line = f"feeds[{i}]", line_of(item)
        if is_null(item):
            self.problem(line, path, "an empty entry; write the feed's URL or remove the line")
            return FeedConfig(url="", line=line)
        if isinstance(item, ScalarNode):
            m = NodeMap(path, line, {"url": (item, item)})
        else:
            allowed = ("url", "title", "topics", "interval", "adaptive")
            m = self.mapping(item, path, line, allowed, ("url",)) or NodeMap(path, line, {})
        return FeedConfig(
            url=self.opt(m, "url", self._feed_url, ""),
            title=self.opt(m, "title", self.text, "") or None,
            topics=self.topic_refs(m, known),
            interval=self.opt(m, "interval", self._poll_interval, defaults.interval),
            line=line,
            adaptive=self.opt(m, "adaptive", self.boolean, defaults.adaptive),
        )

    def _feed_url(self, node: Node, path: str) -> str | None:
        raw = self.string(node, path)
        try:
            return None if raw is None else parse_url_or_path(raw, self.base)
        except ValueError as exc:
            self.problem(line_of(node), path, str(exc))
            return None

    def digests(self, root: NodeMap, known: list[str]) -> tuple[DigestConfig, ...]:
        digests: list[DigestConfig] = []
        m = self.section(root, "digests", None)
        allowed: tuple[str, ...] = ("title", "topics", "schedule", "timezone", "to")
        allowed += ("max_items", "lookback", "template", "max_html_size")
        for digest_id, (key_node, value_node) in m.items.items():
            path, line = m.field(digest_id), line_of(key_node)
            self.slug(digest_id, path, line, "digest")
            body = self.mapping(value_node, path, line, allowed, ("schedule", "to"))
            if body is None:
                continue
            timezone = ZoneInfo(self.opt(body, "timezone", self.timezone, "UTC"))
            digests.append(
                DigestConfig(
                    id=digest_id,
                    title=self.opt(body, "title", self.text, "") or digest_id,
                    schedule=self.opt(body, "schedule", self.schedule, ""),
                    timezone=timezone,
                    to=self.recipients(body),
                    topics=self.topic_refs(body, known),
                    max_items=self.opt(body, "max_items", self.positive, 40),
                    lookback=self.opt(body, "lookback", self._positive_duration, timedelta(days=1)),
                    template=self.opt(body, "template", self.text, "") or None,
                    max_html_bytes=self.opt(body, "max_html_size", self.size, 90_000),
                )
            )
        return tuple(digests)

    def recipients(self, m: NodeMap) -> tuple[str, ...]:
        node = m.get("to")
        found: list[str] = []
        items = self.texts(node, m.field("to"), single_ok=True) if node else []
        for i, (address, item) in enumerate(items):
            field_path = f"{m.field('to')}[{i}]"
            if not is_email_address(address):
                self.problem(line_of(item), field_path, f"'{address}' is not an email address")
            elif address.lower() in found:
                self.problem(line_of(item), field_path, f"'{address}' is listed twice")
            else:
                found.append(address.lower())
        if node is not None and not items and isinstance(node, SequenceNode):
            self.problem(line_of(node), m.field("to"), "needs at least one address")
        return tuple(found)

    def smtp(self, root: NodeMap) -> SmtpConfig | None:
        if root.get("smtp") is None:
            return None
        keys: tuple[str, ...] = ("host", "port", "security", "username", "from", "timeout")
        keys += ("password", "unsubscribe_mailbox")
        m = self.section(root, "smtp", keys, required=("host", "from"))
        if "password" in m.items:
            message = f"don't put the password in the file; set {_ENV_PASSWORD} instead"
            self.problem(m.key_line("password"), m.field("password"), message)
        security: SmtpSecurity = self.opt(m, "security", self.security, "starttls")
        timeout = self.opt(m, "timeout", self._positive_duration, timedelta(seconds=30))
        return SmtpConfig(
            host=self.opt(m, "host", self.text, ""),
            sender=self.opt(m, "from", self.mailbox, ""),
            port=self.opt(
                m, "port", lambda n, p: self.integer(n, p, 1, 65535), _SMTP_PORTS[security]
            ),
            security=security,
            username=self.opt(m, "username", self.text, "") or None,
            password=self.environ.get(_ENV_PASSWORD) or None,
            timeout=timeout.total_seconds(),
            unsubscribe_mailbox=self.opt(m, "unsubscribe_mailbox", self.email, "") or None,
        )

    def security(self, node: Node, path: str) -> SmtpSecurity | None:
        return self.one_of(node, path, _SECURITY, "security")


def require_digest(config: Config, digest_id: str) -> DigestConfig:
    """The digest named ``digest_id``, or UnknownIdError listing the known ones."""
    digest = config.digest(digest_id)
    if digest is None:
        known = ", ".join(d.id for d in config.digests) or "none"
        raise UnknownIdError(f"no digest {digest_id!r} in {config.path} (known: {known})")
    return digest
