"""Located, problem-collecting reads of a YAML node tree, and the generic value parsers
(durations, sizes, URLs, email addresses) its typed readers use.

We walk yaml.compose()'s node tree ourselves instead of yaml.safe_load() so that every
value keeps the line it came from, and so that duplicate keys (which safe_load silently
resolves to "last one wins") can be reported. Nothing here knows feeds.yaml's schema;
aggregator.config builds that on top of TreeReader.
"""

from __future__ import annotations

import difflib
import email.policy
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.errors import InvalidHeaderDefect
from email.utils import parseaddr
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, available_timezones

import yaml
from apscheduler.triggers.cron import CronTrigger
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from aggregator.errors import ConfigError, ConfigProblem

_T = TypeVar("_T")
_C = TypeVar("_C", bound=str)

_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
# Scalars a text field takes as written ("2024" as a title); !!binary, !!timestamp, custom
# tags are something else the user did not mean as text.
_TEXT_TAGS = frozenset({_STR_TAG, _INT_TAG, _BOOL_TAG, _NULL_TAG, "tag:yaml.org,2002:float"})

_DURATION_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
# Longest duration a config may give: "now ± duration" (next poll, retention cut-off,
# digest lookback) must stay a representable datetime, and no real setting comes close.
_MAX_DURATION, _MAX_DURATION_LABEL = timedelta(weeks=5200), "5200w (about 100 years)"
_DURATION_PART = re.compile(r"\s*([0-9]+)\s*([A-Za-z]+)\s*")
_SIZE = re.compile(r"\s*([0-9]+)\s*([kmg]i?b|b)?\s*", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_SIZE_HINT = 'expected a size like "10MB", "512KB" or bytes'
_ADDR_CHAR = r"[^@\s<>,;\"()\[\]\\]"
_EMAIL = re.compile(rf"{_ADDR_CHAR}+@{_ADDR_CHAR}+")
_HOSTLIKE = re.compile(r"(?i)(www\.[^/]+|[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}/.*)")
_DEFAULT_PORTS = {"http": 80, "https": 443}

# ---------------------------------------------------------------- generic value parsers


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


def parse_size(text: str) -> int:
    """Parse "10MB", "512KB", "1GiB" or a bare byte count; units are powers of 1024."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(_SIZE_HINT)
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "")[:1].lower()]


def is_email_address(text: str) -> bool:
    """A bare "local@domain" address (no display name, no angle brackets)."""
    return _EMAIL.fullmatch(text) is not None


def is_mailbox(text: str) -> bool:
    """Exactly one mailbox, "Name <addr@host>" or "addr@host", as a mail header reads it.

    Refuses what would make a broken or crashing From header: several addresses
    ("a@x, b@y" or an unquoted comma in the name), group syntax ("Desk: <a@x>"),
    line breaks, and anything the header parser flags as invalid.
    """
    if "\r" in text or "\n" in text:
        return False
    try:
        header = email.policy.SMTP.header_factory("From", text)
        groups, addresses = header.groups, header.addresses
    except Exception:  # the stdlib parser fails on some odd input with e.g. AttributeError
        return False
    if len(groups) != 1 or groups[0].display_name is not None or len(addresses) != 1:
        return False
    if any(isinstance(defect, InvalidHeaderDefect) for defect in header.defects):
        return False
    address = addresses[0].addr_spec
    # deliver.py takes the envelope sender with parseaddr: both readings must agree.
    return is_email_address(address) and parseaddr(text)[1] == address


def resolve_path(base: Path, text: str) -> Path:
    """``text`` (``~`` expanded) against ``base`` when relative, normalised."""
    return Path(os.path.normpath(base / Path(text).expanduser()))


def parse_http_url(text: str) -> str:
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


def parse_url_or_path(text: str, base: Path) -> str:
    """An http(s) or file URL normalised for identity; a plain path becomes a file:// URL."""
    if not text:
        raise ValueError("empty URL")
    if any(c.isspace() for c in text):
        raise ValueError(f"'{text}' contains whitespace")
    scheme = urlsplit(text).scheme.lower()
    if not scheme:
        if _HOSTLIKE.fullmatch(text):
            raise ValueError(f"'{text}' has no scheme; did you mean 'https://{text}'?")
        return resolve_path(base, text).as_uri()
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError("a file: URL must be absolute (file:///path); or give a plain path")
        return urlunsplit(("file", "", parts.path, parts.query, ""))
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported scheme '{scheme}:'; use http(s)://, file:// or a path")
    return parse_http_url(text)


# ---------------------------------------------------------------- parsing YAML


def compose(text: str, display: str) -> Node | None:
    """yaml.compose() with a syntax error raised as a ConfigError naming file and line."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(display, text, exc)]) from exc


def _yaml_problem(display: str, text: str, exc: yaml.YAMLError) -> ConfigProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = exc.problem or ""
        if "'\\t'" in problem or "\t" in problem:
            return ConfigProblem(display, line, "(yaml)", "a tab character; indent with spaces")
        parts = [p for p in (exc.context, problem) if p]
        message = "invalid YAML: " + ", ".join(parts)
        if "not allowed here" in problem or "expected <block end>" in problem:
            message += "; check the indentation of this line and the one above"
        return ConfigProblem(display, line, "(yaml)", message)
    position = getattr(exc, "position", None)  # ReaderError: bad characters
    line = text.count("\n", 0, position) + 1 if isinstance(position, int) else 0
    return ConfigProblem(display, line, "(yaml)", f"invalid YAML: {exc}")


# ---------------------------------------------------------------- node helpers


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def kind_of(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    names = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean"}
    names |= {"null": "nothing", "timestamp": "a date", "binary": "binary data (!!binary)"}
    return names.get(str(node.tag).rsplit(":", 1)[-1], "a value")


def did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


# ---------------------------------------------------------------- the tree walker


@dataclass
class NodeMap:
    """A checked YAML mapping: its dotted path, the line naming it, and key → (key, value)."""

    path: str
    line: int
    items: dict[str, tuple[Node, Node]]

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str) -> Node | None:
        pair = self.items.get(key)
        return None if pair is None or is_null(pair[1]) else pair[1]

    def key_line(self, key: str) -> int:
        pair = self.items.get(key)
        return line_of(pair[0]) if pair else self.line


_EMPTY_MAP = NodeMap("", 0, {})


class TreeReader:
    """Typed reads of YAML nodes that record every problem instead of stopping at the first.

    Knows nothing about feeds.yaml's schema; aggregator.config._ConfigReader adds that.
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
    ) -> NodeMap | None:
        """Check a mapping's shape and keys; ``allowed=None`` takes any key (id → ...)."""
        if not isinstance(node, MappingNode):
            self.problem(line_of(node), path, f"expected a mapping, got {kind_of(node)}")
            return None
        result = NodeMap(path, line, {})
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
            elif not isinstance(key_node, ScalarNode) or is_null(key_node):
                self.problem(
                    line_of(key_node), path, f"keys must be names, got {kind_of(key_node)}"
                )
            elif key_node.value in result.items:
                first = line_of(result.items[key_node.value][0])
                key = key_node.value
                self.problem(
                    line_of(key_node), result.field(key), f"duplicate key (first at line {first})"
                )
            else:
                result.items[key_node.value] = (key_node, value_node)
        self._merge(result, merges)
        for key, (key_node, _) in result.items.items():
            if allowed is not None and key not in allowed:
                hint = did_you_mean(key, allowed) or f" (known keys: {', '.join(allowed)})"
                self.problem(line_of(key_node), result.field(key), f"unknown key '{key}'{hint}")
        for key in required:
            if result.get(key) is None:
                what = "is empty" if key in result.items else "is missing"
                self.problem(result.key_line(key), result.field(key), f"required key {what}")
        return result

    def _merge(self, target: NodeMap, merges: list[Node]) -> None:
        # YAML "<<: *anchor" merge keys: explicit keys win over merged ones.
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.problem(line_of(source), target.path, "'<<' must merge a mapping")
                    continue
                for key_node, value_node in source.value:
                    if isinstance(key_node, ScalarNode):
                        target.items.setdefault(key_node.value, (key_node, value_node))

    def section(
        self, parent: NodeMap, key: str, allowed: Sequence[str] | None, required: Sequence[str] = ()
    ) -> NodeMap:
        """The mapping under ``key``, or an empty one when it is absent or broken."""
        node = parent.get(key)
        if node is None:
            return NodeMap(parent.field(key), parent.key_line(key), {})
        found = self.mapping(node, parent.field(key), parent.key_line(key), allowed, required)
        return found or _EMPTY_MAP

    def text(self, node: Node, path: str) -> str | None:
        if not isinstance(node, ScalarNode) or node.tag not in _TEXT_TAGS:
            self.problem(line_of(node), path, f"expected a string, got {kind_of(node)}")
            return None
        return "" if is_null(node) else str(node.value).strip()

    def texts(self, node: Node, path: str, *, single_ok: bool = False) -> list[tuple[str, Node]]:
        if single_ok and isinstance(node, ScalarNode):
            value = self.text(node, path)
            return [] if value is None else [(value, node)]
        if not isinstance(node, SequenceNode):
            self.problem(line_of(node), path, f"expected a list, got {kind_of(node)}")
            return []
        found = ((self.text(item, f"{path}[{i}]"), item) for i, item in enumerate(node.value))
        return [(value, item) for value, item in found if value is not None]

    def string(self, node: Node, path: str) -> str | None:
        """Text that must be written as text: a URL is never a number, a date or nothing."""
        if not (isinstance(node, ScalarNode) and node.tag == _STR_TAG) or is_null(node):
            self.problem(line_of(node), path, f"expected a string, got {kind_of(node)}")
            return None
        return str(node.value).strip()

    def integer(self, node: Node, path: str, low: int, high: int | None = None) -> int | None:
        if not (isinstance(node, ScalarNode) and node.tag == _INT_TAG):
            self.problem(line_of(node), path, f"expected an integer, got {kind_of(node)}")
            return None
        value = int(SafeConstructor().construct_yaml_int(node))
        if value < low or (high is not None and value > high):
            limit = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problem(line_of(node), path, f"must be {limit}, got {value}")
            return None
        return value

    def positive(self, node: Node, path: str) -> int | None:
        return self.integer(node, path, 1)

    def boolean(self, node: Node, path: str) -> bool | None:
        if not (isinstance(node, ScalarNode) and node.tag == _BOOL_TAG):
            self.problem(line_of(node), path, f"expected true or false, got {kind_of(node)}")
            return None
        return bool(SafeConstructor().construct_yaml_bool(node))

    def duration(self, node: Node, path: str, minimum: timedelta, label: str) -> timedelta | None:
        value = self.text(node, path)
        if value is None:
            return None
        try:
            result = parse_duration(value)
        except ValueError as exc:
            self.problem(line_of(node), path, str(exc))
            return None
        if result < minimum:
            self.problem(line_of(node), path, f'must be at least {label}, got "{value}"')
            return None
        if result > _MAX_DURATION:
            message = f'must be at most {_MAX_DURATION_LABEL}, got "{value}"'
            self.problem(line_of(node), path, message)
            return None
        return result

    def size(self, node: Node, path: str) -> int | None:
        """At least 1 byte: an integer, or a string such as "10MB" (see parse_size)."""
        if isinstance(node, ScalarNode) and node.tag == _INT_TAG:
            return self.integer(node, path, 1)
        if not isinstance(node, ScalarNode):
            self.problem(line_of(node), path, _SIZE_HINT)
            return None
        try:
            size = parse_size(node.value)
        except ValueError as exc:
            self.problem(line_of(node), path, str(exc))
            return None
        if size < 1:
            self.problem(line_of(node), path, "must be at least 1 byte")
            return None
        return size

    def schedule(self, node: Node, path: str) -> str | None:
        value = self.text(node, path)
        if value is None:
            return None
        expression = " ".join(value.split())
        try:
            CronTrigger.from_crontab(expression, timezone="UTC")
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            example = 'e.g. "0 7 * * *" for 07:00 daily'
            self.problem(line_of(node), path, f"bad cron expression '{value}': {exc} ({example})")
            return None
        return expression

    def timezone(self, node: Node, path: str) -> str | None:
        value = self.text(node, path)
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (KeyError, ValueError, OSError):
            hint = did_you_mean(value, sorted(available_timezones()))
            hint = hint or " (use an IANA name such as 'Europe/Kyiv' or 'UTC')"
            self.problem(line_of(node), path, f"unknown time zone '{value}'{hint}")
            return None
        return value

    def mailbox(self, node: Node, path: str) -> str | None:
        """An address with an optional display name: "Name <addr@host>" or "addr@host"."""
        value = self.text(node, path)
        if value is None:
            return None
        if not is_mailbox(value):
            example = '"Name <addr@example.org>" or "addr@example.org"'
            self.problem(line_of(node), path, f"'{value}' is not an email address; use {example}")
            return None
        return value

    def email(self, node: Node, path: str) -> str | None:
        """A bare address, "addr@host"."""
        value = self.text(node, path)
        if value is not None and not is_email_address(value):
            self.problem(line_of(node), path, f"'{value}' is not an email address")
            return None
        return value

    def opt(self, m: NodeMap, key: str, read: Callable[[Node, str], _T | None], default: _T) -> _T:
        node = m.get(key)
        value = None if node is None else read(node, m.field(key))
        return default if value is None else value

    def one_of(self, node: Node, path: str, choices: tuple[_C, ...], what: str) -> _C | None:
        """One of ``choices`` (a Literal's values), or a problem with a suggestion."""
        value = self.text(node, path)
        for choice in choices:
            if value == choice:
                return choice
        if value is not None:
            listed = f"{', '.join(choices[:-1])} or {choices[-1]}"
            hint = did_you_mean(value, choices) or f" (choose {listed})"
            self.problem(line_of(node), path, f"unknown {what} '{value}'{hint}")
        return None
