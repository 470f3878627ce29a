"""feeds.yaml loading: the happy path into dataclasses, and every mistake located exactly."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import (
    DEFAULT_TOPIC_THRESHOLD,
    Config,
    DigestConfig,
    FeedConfig,
    TopicRule,
    check_config,
    load_config,
    parse_duration,
)
from aggregator.errors import ConfigError, ConfigProblem

FULL = """\
site:
  title: War Desk
  url: HTTPS://News.Example.org
  author: War Desk editors
output_dir: public
database: sqlite:///state/agg.db
templates: my-templates
defaults:
  interval: 20m
  feed_items: 50
  retention: 4w
fetch:
  concurrency: 5
  per_host: 1
  timeout: 10s
  max_size: 512KB
topics:
  ukraine-war:
    title: Ukraine war
    keywords: [Ukraine, Kyiv, ukrain*]
    phrases: [Black Sea Fleet]
    exclude: [airline*]
  tech:
    keywords: [AI]
  moscow:
feeds:
  - url: https://www.themoscowtimes.com/rss/news
    title: The Moscow Times
    topics: [moscow]
    interval: 1h30m
  - corpus/local.xml
  - HTTP://Example.ORG:80/feed.xml#top
  - file:///srv/feeds/x.xml
digests:
  ukraine-daily:
    title: "Ukraine war — daily digest"
    topics: [ukraine-war]
    schedule: "0 7 * * *"
    timezone: Europe/Kyiv
    to: [editor@example.org, desk@example.org]
    max_items: 25
    lookback: 2d
    template: digest-ukraine
  everything:
    schedule: "30 6 * * 1"
    to: all@example.org
smtp:
  host: mail.example.org
  security: ssl
  username: digest@example.org
  from: "War Desk <digest@example.org>"
  timeout: 1m
"""

MINIMAL = """\
site:
  title: Desk
  url: https://news.example.org/
feeds: []
"""


def write(tmp_path: Path, text: str, name: str = "feeds.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(text: str, marker: str) -> int:
    """1-based line of the only line containing ``marker``, so cases can't drift."""
    hits = [n for n, line in enumerate(textwrap.dedent(text).splitlines(), 1) if marker in line]
    assert len(hits) == 1, f"marker {marker!r} must occur once, found {hits}"
    return hits[0]


# ---------------------------------------------------------------- valid configs


def test_full_config_round_trips_into_dataclasses(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    config = load_config(path, environ={"AGGREGATOR_SMTP_PASSWORD": "s3cret"})

    assert isinstance(config, Config)
    assert config.path == path
    assert config.site.title == "War Desk"
    assert config.site.url == "https://news.example.org/"
    assert config.site.author == "War Desk editors"
    assert config.output_dir == tmp_path / "public"
    assert config.templates_dir == tmp_path / "my-templates"
    assert config.database_url == f"sqlite:///{tmp_path}/state/agg.db"
    assert config.defaults.interval == timedelta(minutes=20)
    assert config.defaults.feed_items == 50
    assert config.defaults.retention == timedelta(weeks=4)
    assert config.fetch.concurrency == 5
    assert config.fetch.per_host == 1
    assert config.fetch.timeout == timedelta(seconds=10)
    assert config.fetch.max_bytes == 512 * 1024

    assert config.topics == (
        TopicRule(
            "ukraine-war",
            "Ukraine war",
            keywords=("Ukraine", "Kyiv", "ukrain*"),
            phrases=("Black Sea Fleet",),
            exclude=("airline*",),
        ),
        TopicRule("tech", "tech", keywords=("AI",)),
        TopicRule("moscow", "moscow"),  # hollow, but feeds[0] hints it
    )
    assert config.topic("tech") is config.topics[1]

    assert config.feeds == (
        FeedConfig(
            url="https://www.themoscowtimes.com/rss/news",
            title="The Moscow Times",
            topics=("moscow",),
            interval=timedelta(hours=1, minutes=30),
            line=line_of(FULL, "themoscowtimes"),
        ),
        FeedConfig(
            url=(tmp_path / "corpus" / "local.xml").as_uri(),
            interval=timedelta(minutes=20),
            line=line_of(FULL, "corpus/local.xml"),
        ),
        FeedConfig(
            url="http://example.org/feed.xml",
            interval=timedelta(minutes=20),
            line=line_of(FULL, "Example.ORG"),
        ),
        FeedConfig(
            url="file:///srv/feeds/x.xml",
            interval=timedelta(minutes=20),
            line=line_of(FULL, "/srv/feeds"),
        ),
    )

    assert config.digests == (
        DigestConfig(
            id="ukraine-daily",
            title="Ukraine war — daily digest",
            schedule="0 7 * * *",
            timezone=ZoneInfo("Europe/Kyiv"),
            to=("editor@example.org", "desk@example.org"),
            topics=("ukraine-war",),
            max_items=25,
            lookback=timedelta(days=2),
            template="digest-ukraine",
        ),
        DigestConfig(
            id="everything",
            title="everything",
            schedule="30 6 * * 1",
            timezone=ZoneInfo("UTC"),
            to=("all@example.org",),
        ),
    )
    assert config.digest("everything") is config.digests[1]

    smtp = config.smtp
    assert smtp is not None
    assert (smtp.host, smtp.sender, smtp.port, smtp.security) == (
        "mail.example.org",
        "War Desk <digest@example.org>",
        465,  # the ssl default
        "ssl",
    )
    assert smtp.username == "digest@example.org"
    assert smtp.password == "s3cret"
    assert smtp.timeout == 60.0
    assert "s3cret" not in repr(config)


def test_minimal_config_gets_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), environ={})
    assert config.site.author == "Desk"
    assert config.output_dir == tmp_path / "output"
    assert config.templates_dir == tmp_path / "templates"
    assert config.database_url == f"sqlite:///{tmp_path}/state/aggregator.db"
    assert config.database_url.startswith("sqlite:////")
    assert config.defaults.interval == timedelta(minutes=30)
    assert config.defaults.feed_items == 100
    assert config.defaults.retention == timedelta(days=90)
    assert config.fetch.max_bytes == 10 * 1024 * 1024
    assert (config.topics, config.feeds, config.digests, config.smtp) == ((), (), (), None)
    assert check_config(tmp_path / "feeds.yaml", environ={}) == []


def test_topic_weak_context_and_threshold_are_read(tmp_path: Path) -> None:
    text = MINIMAL + textwrap.dedent("""\
        topics:
          war:
            title: War
            keywords: [Kyiv]
            weak: [Russia*, "Black Sea"]
            context: [missile*, front line]
            threshold: 4
          tech:
            keywords: [AI]
        """)
    config = load_config(write(tmp_path, text), environ={})
    assert config.topics == (
        TopicRule(
            "war",
            "War",
            keywords=("Kyiv",),
            weak=("Russia*", "Black Sea"),
            context=("missile*", "front line"),
            threshold=4,
        ),
        TopicRule("tech", "tech", keywords=("AI",), threshold=DEFAULT_TOPIC_THRESHOLD),
    )


def test_a_topic_of_weak_and_context_terms_only_is_valid(tmp_path: Path) -> None:
    text = MINIMAL + "topics:\n  war:\n    weak: [Russia]\n    context: [missile*]\n"
    assert check_config(write(tmp_path, text), environ={}) == []


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite:////var/lib/agg.db", "sqlite:////var/lib/agg.db"),
        ("postgresql://agg@db.internal/agg", "postgresql+psycopg://agg@db.internal/agg"),
        ("postgresql+psycopg://agg@db/agg", "postgresql+psycopg://agg@db/agg"),
    ],
)
def test_database_urls(tmp_path: Path, written: str, expected: str) -> None:
    path = write(tmp_path, MINIMAL + f"database: '{written}'\n")
    assert load_config(path, environ={}).database_url == expected


def test_environment_overrides_database_and_supplies_smtp_password(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "smtp:\n  host: localhost\n  from: a@example.org\n")
    environ = {
        "AGGREGATOR_DATABASE_URL": "sqlite:///elsewhere.db",
        "AGGREGATOR_SMTP_PASSWORD": "hunter2",
    }
    config = load_config(path, environ=environ)
    assert config.database_url == "sqlite:///elsewhere.db"  # used as given, not re-based
    assert config.smtp is not None
    assert config.smtp.password == "hunter2"
    assert config.smtp.port == 587
    assert config.smtp.security == "starttls"

    without = load_config(path, environ={})
    assert without.smtp is not None
    assert without.smtp.password is None


def test_sender_with_quoted_special_characters_is_accepted(tmp_path: Path) -> None:
    sender = '"War Desk, Kyiv" <digest@example.org>'
    text = MINIMAL + "smtp:\n  host: localhost\n  from: '" + sender + "'\n"
    smtp = load_config(write(tmp_path, text), environ={}).smtp
    assert smtp is not None
    assert smtp.sender == sender


def test_smtp_port_defaults_follow_security(tmp_path: Path) -> None:
    ports = {}
    for security in ("none", "starttls", "ssl"):
        smtp = f"smtp:\n  host: h\n  from: a@example.org\n  security: {security}\n"
        config = load_config(write(tmp_path, MINIMAL + smtp), environ={})
        assert config.smtp is not None
        ports[security] = config.smtp.port
    assert ports == {"none": 25, "starttls": 587, "ssl": 465}


def test_yaml_merge_keys_share_digest_settings(tmp_path: Path) -> None:
    text = MINIMAL + textwrap.dedent("""\
        digests:
          morning: &base
            schedule: "0 7 * * *"
            to: [a@example.org]
            timezone: Europe/Berlin
          evening:
            <<: *base
            schedule: "0 19 * * *"
        """)
    config = load_config(write(tmp_path, text), environ={})
    evening = config.digest("evening")
    assert evening is not None
    assert (evening.schedule, evening.timezone, evening.to) == (
        "0 19 * * *",
        ZoneInfo("Europe/Berlin"),
        ("a@example.org",),
    )


def test_relative_path_is_displayed_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, MINIMAL + "bogus: 1\n")
    monkeypatch.chdir(tmp_path)
    (problem,) = check_config("feeds.yaml", environ={})
    assert problem.file == "feeds.yaml"
    assert str(problem) == "feeds.yaml:5: bogus: unknown key 'bogus' (known keys: " + (
        "site, output_dir, state_dir, database, templates, defaults, fetch, topics, feeds, "
        "digests, smtp)"
    )


# ---------------------------------------------------------------- mistakes, each located

SMTP = "smtp:\n  host: localhost\n  from: a@example.org\n"
DIGEST = "digests:\n  daily:\n    schedule: '0 7 * * *'\n    to: [a@example.org]\n"

# (name, file text, marker on the offending line, field, fragment of the message)
MISTAKES = [
    (
        "unknown top-level key",
        MINIMAL + "output_dri: out\n",
        "output_dri",
        "output_dri",
        "unknown key 'output_dri'; did you mean 'output_dir'?",
    ),
    (
        "unknown nested key",
        MINIMAL + "defaults:\n  intervall: 5m\n",
        "intervall",
        "defaults.intervall",
        "did you mean 'interval'?",
    ),
    (
        "string where a list is expected",
        MINIMAL.replace("feeds: []", "feeds: https://example.org/rss"),
        "feeds:",
        "feeds",
        "expected a list, got a string",
    ),
    (
        "list where a mapping is expected",
        MINIMAL + "fetch: [1, 2]\n",
        "fetch:",
        "fetch",
        "expected a mapping, got a list",
    ),
    (
        "keywords as a string",
        MINIMAL + "topics:\n  tech:\n    keywords: AI\n",
        "keywords: AI",
        "topics.tech.keywords",
        "expected a list, got a string",
    ),
    (
        "site url not absolute",
        MINIMAL.replace("https://news.example.org/", "news.example.org"),
        "url:",
        "site.url",
        "not an absolute http(s) URL",
    ),
    (
        "feed url with unsupported scheme",
        MINIMAL.replace("feeds: []", "feeds:\n  - title: x\n    url: ftp://example.org/rss"),
        "ftp://",
        "feeds[0].url",
        "unsupported scheme 'ftp:'",
    ),
    (
        "feed url without scheme",
        MINIMAL.replace("feeds: []", "feeds:\n  - example.org/rss"),
        "example.org/rss",
        "feeds[0].url",
        "did you mean 'https://example.org/rss'?",
    ),
    (
        "interval as a bare number",
        MINIMAL.replace("feeds: []", "feeds:\n  - url: https://e.org/a\n    interval: 30"),
        "interval: 30",
        "feeds[0].interval",
        '"30m"',
    ),
    (
        "interval with an unknown unit",
        MINIMAL + "defaults:\n  interval: 5min\n",
        "5min",
        "defaults.interval",
        'unknown unit "min"',
    ),
    (
        "interval below the minimum",
        MINIMAL.replace("feeds: []", "feeds:\n  - url: https://e.org/a\n    interval: 10s"),
        "10s",
        "feeds[0].interval",
        "must be at least 1m",
    ),
    (
        "interval too long to schedule",
        MINIMAL + "defaults:\n  interval: 1000000w\n",
        "1000000w",
        "defaults.interval",
        "must be at most 5200w",
    ),
    (
        "retention too long to compute a cut-off",
        MINIMAL + "defaults:\n  retention: 999999999d\n",
        "999999999d",
        "defaults.retention",
        "must be at most 5200w",
    ),
    (
        "bad cron",
        MINIMAL + DIGEST.replace("'0 7 * * *'", "'0 7 * *'"),
        "schedule:",
        "digests.daily.schedule",
        "bad cron expression '0 7 * *'",
    ),
    (
        "cron value out of range",
        MINIMAL + DIGEST.replace("'0 7 * * *'", "'61 7 * * *'"),
        "schedule:",
        "digests.daily.schedule",
        "higher than the maximum",
    ),
    (
        "bad timezone",
        MINIMAL + DIGEST + "    timezone: Europe/Kyev\n",
        "Kyev",
        "digests.daily.timezone",
        "unknown time zone 'Europe/Kyev'; did you mean 'Europe/Kyiv'?",
    ),
    (
        "unknown topic in a feed",
        MINIMAL.replace("feeds: []", "feeds:\n  - url: https://e.org/a\n    topics: [tehc]")
        + "topics:\n  tech:\n    keywords: [AI]\n",
        "tehc",
        "feeds[0].topics[0]",
        "unknown topic 'tehc'; did you mean 'tech'? (known topics: tech)",
    ),
    (
        "unknown topic in a digest",
        MINIMAL + DIGEST + "    topics: [sports]\n",
        "sports",
        "digests.daily.topics[0]",
        "unknown topic 'sports' (known topics: none are defined)",
    ),
    (
        "duplicate feed after normalising",
        MINIMAL.replace("feeds: []", "feeds:\n  - https://e.org/a\n  - HTTPS://E.ORG:443/a#frag"),
        "E.ORG",
        "feeds[1].url",
        "duplicate of feeds[0] (line 5)",
    ),
    (
        "bad email",
        MINIMAL + DIGEST.replace("[a@example.org]", "[a@example.org, 'b at example.org']"),
        "b at example",
        "digests.daily.to[1]",
        "'b at example.org' is not an email address",
    ),
    (
        "empty recipient list",
        MINIMAL + DIGEST.replace("[a@example.org]", "[]"),
        "to: []",
        "digests.daily.to",
        "needs at least one address",
    ),
    (
        "password in the file",
        MINIMAL + SMTP + "  password: hunter2\n",
        "hunter2",
        "smtp.password",
        "set AGGREGATOR_SMTP_PASSWORD instead",
    ),
    (
        "bad sender",
        MINIMAL + SMTP.replace("a@example.org", "'Desk <nobody>'"),
        "from:",
        "smtp.from",
        "is not an email address",
    ),
    (
        "two addresses as sender",
        MINIMAL + SMTP.replace("a@example.org", "'a@example.org, b@example.org'"),
        "from:",
        "smtp.from",
        "is not an email address",
    ),
    (
        "unquoted comma in sender name",
        MINIMAL + SMTP.replace("a@example.org", "'Desk, Inc. <a@example.org>'"),
        "from:",
        "smtp.from",
        "is not an email address",
    ),
    (
        "colon in sender name (group syntax, not a mailbox)",
        MINIMAL + SMTP.replace("a@example.org", "'War Desk: <a@example.org>'"),
        "from:",
        "smtp.from",
        "is not an email address",
    ),
    (
        "bad security value",
        MINIMAL + SMTP + "  security: startls\n",
        "startls",
        "smtp.security",
        "unknown security 'startls'; did you mean 'starttls'?",
    ),
    (
        "port out of range",
        MINIMAL + SMTP + "  port: 70000\n",
        "70000",
        "smtp.port",
        "must be between 1 and 65535, got 70000",
    ),
    (
        "missing required key",
        MINIMAL.replace("  title: Desk\n", ""),
        "site:",
        "site.title",
        "required key is missing",
    ),
    (
        "missing feeds",
        MINIMAL.replace("feeds: []\n", ""),
        "site:",
        "feeds",
        "required key is missing",
    ),
    (
        "missing smtp host",
        MINIMAL + "smtp:\n  from: a@example.org\n",
        "smtp:",
        "smtp.host",
        "required key is missing",
    ),
    (
        "bad topic id",
        MINIMAL + "topics:\n  Ukraine War:\n    keywords: [Kyiv]\n",
        "Ukraine War",
        "topics.Ukraine War",
        "e.g. 'ukraine-war'",
    ),
    (
        "bad digest id",
        MINIMAL + DIGEST.replace("daily:", "Daily_Digest:"),
        "Daily_Digest",
        "digests.Daily_Digest",
        "e.g. 'daily-digest'",
    ),
    (
        "star inside a keyword",
        MINIMAL + "topics:\n  war:\n    keywords: [Kyiv, 'uk*ine']\n",
        "uk*ine",
        "topics.war.keywords[1]",
        "'*' is only allowed at the end",
    ),
    (
        "empty keyword",
        MINIMAL + "topics:\n  war:\n    keywords: [Kyiv, '']\n",
        "keywords:",
        "topics.war.keywords[1]",
        "empty term",
    ),
    (
        "topic that matches nothing",
        MINIMAL + "topics:\n  war:\n    title: War\n",
        "war:",
        "topics.war",
        "matches nothing",
    ),
    (
        "topic threshold zero",
        MINIMAL + "topics:\n  war:\n    keywords: [Kyiv]\n    threshold: 0\n",
        "threshold",
        "topics.war.threshold",
        "must be at least 1, got 0",
    ),
    (
        "topic threshold not a number",
        MINIMAL + "topics:\n  war:\n    keywords: [Kyiv]\n    threshold: high\n",
        "threshold",
        "topics.war.threshold",
        "expected an integer",
    ),
    (
        "misspelt weak key",
        MINIMAL + "topics:\n  war:\n    keywords: [Kyiv]\n    weka: [Russia]\n",
        "weka",
        "topics.war.weka",
        "did you mean 'weak'?",
    ),
    (
        "star inside a weak term",
        MINIMAL + "topics:\n  war:\n    keywords: [Kyiv]\n    weak: [Russia, 'Rus*ia']\n",
        "weak:",
        "topics.war.weak[1]",
        "'*' is only allowed at the end",
    ),
    (
        "empty context term",
        MINIMAL
        + "topics:\n  war:\n    keywords: [Kyiv]\n    weak: [Russia]\n    context:\n"
        + "      - missile*\n      - ''\n",
        "- ''",
        "topics.war.context[1]",
        "empty term",
    ),
    (
        "weak term that is also a keyword",
        MINIMAL + "topics:\n  war:\n    keywords: [Kyiv, Russia]\n    weak:\n      - russia\n",
        "- russia",
        "topics.war.weak[0]",
        "'russia' is already a keyword or phrase; list it once",
    ),
    (
        "context term that is also a weak term",
        MINIMAL
        + "topics:\n  war:\n    keywords: [Kyiv]\n    weak: [Russia, war]\n    context:\n"
        + "      - missile*\n      - War\n",
        "- War",
        "topics.war.context[1]",
        "'War' is already a weak term; list it once",
    ),
    (
        "weak terms with no company possible",
        MINIMAL + "topics:\n  war:\n    weak: [Russia, Putin]\n",
        "weak:",
        "topics.war.weak",
        "weak terms count only next to a keyword, phrase or context term",
    ),
    (
        "bad database scheme",
        MINIMAL + "database: mysql://db/agg\n",
        "mysql",
        "database",
        "unsupported database 'mysql'",
    ),
    (
        "bad max_size",
        MINIMAL + "fetch:\n  max_size: ten megabytes\n",
        "max_size",
        "fetch.max_size",
        'expected a size like "10MB"',
    ),
    (
        "feed_items zero",
        MINIMAL + "defaults:\n  feed_items: 0\n",
        "feed_items",
        "defaults.feed_items",
        "must be at least 1, got 0",
    ),
    (
        "duplicate YAML key",
        MINIMAL + "output_dir: a\noutput_dir: b\n",
        "output_dir: b",
        "output_dir",
        "duplicate key (first at line 5)",
    ),
    (
        "YAML syntax error",
        MINIMAL + "topics:\n  war:\n    keywords: [Kyiv, Kharkiv\n  tech: {}\n",
        "tech:",
        "(yaml)",
        "invalid YAML",
    ),
    (
        "empty feed entry",
        MINIMAL.replace("feeds: []", "feeds:\n  - ~  # empty\n  - https://e.org/a"),
        "# empty",
        "feeds[0]",
        "an empty entry",
    ),
    (
        "feed url is a number",
        MINIMAL.replace("feeds: []", "feeds: [42]"),
        "feeds: [42]",
        "feeds[0].url",
        "expected a string, got an integer",
    ),
    (
        "feed url is binary",
        MINIMAL.replace("feeds: []", "feeds:\n  - url: !!binary aGVsbG8="),
        "!!binary",
        "feeds[0].url",
        "got binary data",
    ),
    (
        "tab indentation",
        MINIMAL.replace("feeds: []", "feeds:\n\t- https://e.org/a"),
        "\t-",
        "(yaml)",
        "a tab character; indent with spaces",
    ),
    (
        "bad indentation",
        MINIMAL.replace("feeds: []", "feeds:\n  - url: https://e.org/a\n   title: x"),
        "   title: x",
        "(yaml)",
        "check the indentation",
    ),
    (
        "allow_private not a boolean",
        MINIMAL + "fetch:\n  allow_private: sometimes\n",
        "allow_private",
        "fetch.allow_private",
        "expected true or false",
    ),
]


@pytest.mark.parametrize(
    ("text", "marker", "field", "fragment"),
    [case[1:] for case in MISTAKES],
    ids=[case[0] for case in MISTAKES],
)
def test_each_mistake_names_line_and_field(
    tmp_path: Path, text: str, marker: str, field: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    line = line_of(text, marker)
    matching = [p for p in caught.value.problems if p.field == field and p.line == line]
    assert matching, f"no problem at line {line} for {field}: {caught.value.problems}"
    assert any(fragment in p.message for p in matching), matching
    assert all(p.file == str(path) for p in caught.value.problems)
    assert f"{path}:{line}: {field}: " in str(caught.value)


def test_several_problems_are_all_reported_in_line_order(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        site:
          title: Desk
          url: ftp://nowhere
        feeds:
          - url: https://e.org/a
            interval: 7
          - url: https://e.org/a
        digests:
          daily:
            schedule: "0 25 * * *"
            timezone: Mars/Olympus
            to: [nobody]
        smtp:
          host: h
          from: a@example.org
          password: x
        colour: blue
        """)
    problems = check_config(write(tmp_path, text), environ={})
    located = [(p.line, p.field) for p in problems]
    assert located == [
        (3, "site.url"),
        (6, "feeds[0].interval"),
        (7, "feeds[1].url"),
        (10, "digests.daily.schedule"),
        (11, "digests.daily.timezone"),
        (12, "digests.daily.to[0]"),
        (16, "smtp.password"),
        (17, "colour"),
    ]


def test_non_utf8_file_names_the_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_bytes(MINIMAL.replace("Desk", "D\xe9sk").encode("latin-1"))
    (problem,) = check_config(path, environ={})
    assert (problem.line, problem.field) == (2, "(file)")
    assert problem.message == "not UTF-8 text (byte 0xe9 at column 11); save the file as UTF-8"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing, environ={})
    assert caught.value.problems == (ConfigProblem(str(missing), 0, "(file)", "no such file"),)


def test_empty_file_and_non_mapping_root(tmp_path: Path) -> None:
    (empty,) = check_config(write(tmp_path, ""), environ={})
    assert (empty.line, empty.field) == (1, "(file)")
    assert "needs at least 'site' and 'feeds'" in empty.message
    (listed,) = check_config(write(tmp_path, "- a\n- b\n"), environ={})
    assert (listed.line, listed.message) == (1, "expected a mapping, got a list")


def test_bad_database_url_in_environment_is_reported(tmp_path: Path) -> None:
    environ = {"AGGREGATOR_DATABASE_URL": "oracle://x/y"}
    (problem,) = check_config(write(tmp_path, MINIMAL), environ=environ)
    assert problem.field == "AGGREGATOR_DATABASE_URL"
    assert "unsupported database 'oracle'" in problem.message


# ---------------------------------------------------------------- parse_duration

UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1)}
UNITS |= {"m": timedelta(minutes=1), "s": timedelta(seconds=1)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (" 1d 12h ", timedelta(days=1, hours=12)),
    ],
)
def test_parse_duration_examples(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("30", '"30m"'),
        ("", "empty duration"),
        ("30m1h", "largest to smallest"),
        ("1h1h", "largest to smallest"),
        ("5 minutes", 'unknown unit "minutes"'),
        ("1.5h", "cannot read"),
        ("-5m", "cannot read"),
        ("h", "cannot read"),
    ],
)
def test_parse_duration_rejects_with_helpful_message(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_duration(text)


@given(
    st.dictionaries(
        st.sampled_from(list(UNITS)), st.integers(min_value=0, max_value=10**6), min_size=1
    ),
    st.sampled_from(["", " "]),
)
def test_parse_duration_round_trips_generated_combinations(
    parts: dict[str, int], separator: str
) -> None:
    text = separator.join(f"{parts[unit]}{unit}" for unit in "wdhms" if unit in parts)
    assert parse_duration(text) == sum((n * UNITS[u] for u, n in parts.items()), timedelta())


@given(st.integers(min_value=0))
def test_parse_duration_refuses_every_bare_integer(number: int) -> None:
    with pytest.raises(ValueError, match="30m"):
        parse_duration(str(number))


@given(st.text())
def test_parse_duration_garbage_raises_only_value_error(text: str) -> None:
    try:
        result = parse_duration(text)
    except ValueError:
        return
    assert result >= timedelta(0)
