"""The command line: exit codes, human and machine output, and the shipped feeds.yaml."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from aggregator.cli import cli
from aggregator.config import check_config

from .conftest import write_config
from .feeds import Item, rss

REPO = Path(__file__).resolve().parents[1]


def hours_ago(hours: int) -> str:
    return format_datetime(datetime.now(UTC) - timedelta(hours=hours), usegmt=True)


@pytest.fixture
def config(tmp_path: Path, httpserver: HTTPServer) -> Path:
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss(
            [
                # The CLI runs on the real clock, so dates are relative to it.
                Item("a", "Kyiv talks resume", pub_date=hours_ago(1)),
                Item("b", "Weather", pub_date=hours_ago(20)),
            ]
        ),
        content_type="application/rss+xml",
    )
    return write_config(
        tmp_path,
        f"""\
        database: sqlite:///state/cli.db
        topics:
          ukraine-war:
            keywords: [Kyiv]
        feeds:
          - url: {httpserver.url_for("/feed.xml")}
            title: Local source
        digests:
          daily:
            title: Daily
            schedule: "0 7 * * *"
            to: editor@example.org
        """,
    )


def invoke(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_shipped_feeds_yaml_is_valid() -> None:
    assert check_config(REPO / "feeds.yaml") == []


def test_check_reports_file_line_field_and_exits_1(tmp_path: Path) -> None:
    bad = write_config(tmp_path, "feeds:\n  - url: not a url\n    interval: soon\n")
    code, _, err = invoke(bad, "check")
    assert code == 1
    lines = err.strip().splitlines()
    assert any(line.startswith(f"{bad}:6: feeds[0].url:") for line in lines), lines
    assert any(line.startswith(f"{bad}:7: feeds[0].interval:") for line in lines), lines


def test_check_ok(config: Path) -> None:
    code, out, _ = invoke(config, "check")
    assert (code, out.strip()) == (0, f"{config}: OK")


def test_fetch_status_export(config: Path) -> None:
    code, out, err = invoke(config, "fetch", "--all")
    assert code == 0, err
    assert "1 feed(s) polled: 1 ok, 0 failed; 2 new" in out
    header, row = out.splitlines()[:2]
    assert header.split() == ["feed", "result", "new", "updated", "note"]
    assert row.split() == ["Local", "source", "new", "entries", "2", "0"]

    code, out, _ = invoke(config, "status", "--format", "json")
    status = json.loads(out)
    [row] = status["feeds"]
    [digest] = status["digests"]
    assert (digest["digest"], digest["readers"], digest["last_issue"]) == ("daily", 1, None)
    assert (row["title"], row["http_status"], row["entries"], row["error"]) == (
        "Local source",
        200,
        2,
        None,
    )

    code, out, _ = invoke(config, "status")
    header, row_text = out.splitlines()[:2]
    assert header.split()[:3] == ["feed", "state", "last"]
    assert row_text.startswith("Local source  ok ")

    code, out, _ = invoke(config, "export", "--topic", "ukraine-war")
    [line] = [json.loads(x) for x in out.splitlines()]
    assert set(line) == {
        "feed", "id", "link", "title", "published", "topics", "story_id", "sources"
    }  # fmt: skip
    assert (line["id"], line["topics"]) == ("a", ["ukraine-war"])
    assert line["story_id"].startswith("story:")  # every article is in a story, maybe alone
    assert line["sources"] == [line["feed"]]

    code, out, _ = invoke(config, "export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == ["a", "b"]


def test_unknown_ids_are_user_errors(config: Path) -> None:
    assert invoke(config, "digest", "nope")[0] == 1
    assert invoke(config, "export", "--topic", "nope")[0] == 1


def test_digest_dry_run_prints_text_and_writes_nothing(config: Path, tmp_path: Path) -> None:
    invoke(config, "fetch", "--all")
    code, out, _ = invoke(config, "digest", "daily", "--dry-run")
    assert code == 0
    assert "Kyiv talks resume" in out
    assert not (tmp_path / "state" / "digests").exists()
    code, out, _ = invoke(config, "digest", "daily")
    assert code == 0
    # A preview is private and is not an issue: the public archive stays empty.
    assert len(list((tmp_path / "state" / "digests" / "daily" / "preview").iterdir())) == 3
    assert not (tmp_path / "output" / "digests").exists()


def test_send_without_smtp_section_is_a_user_error(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGGREGATOR_SECRET_KEY", "cli-test-secret-0123456789")
    invoke(config, "fetch", "--all")
    code, _, err = invoke(config, "digest", "daily", "--send")
    assert code == 1
    assert "smtp" in err


def test_send_without_secret_key_says_how_to_make_one(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGGREGATOR_SECRET_KEY", raising=False)
    invoke(config, "fetch", "--all")
    code, _, err = invoke(config, "digest", "daily", "--send")
    assert code == 1
    assert "AGGREGATOR_SECRET_KEY" in err
    assert "openssl rand" in err


def test_run_once_send_without_smtp_exits_2(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_SECRET_KEY", "cli-test-secret-0123456789")
    code, _, err = invoke(config, "run", "--once", "--send")
    assert code == 2
    assert "smtp" in err


def test_subscribers_add_list_remove_and_import(config: Path, tmp_path: Path) -> None:
    code, out, err = invoke(
        config, "subscribers", "add", "daily", "Ann@Example.org", "bo@example.org"
    )
    assert code == 0, err
    assert "added: 2" in out
    listing = tmp_path / "list.csv"
    listing.write_text("Email Address,Name\ncy@example.org,Cy\nann@example.org,Ann\n")
    code, out, err = invoke(config, "subscribers", "import", "daily", str(listing))
    assert code == 0, err
    assert "added: 1" in out
    assert "already subscribed: 1" in out
    code, out, _ = invoke(config, "subscribers", "remove", "daily", "BO@example.org")
    assert (code, out.strip()) == (0, "BO@example.org: unsubscribed")
    code, out, _ = invoke(config, "subscribers", "list", "daily", "--format", "csv")
    rows = {r["address"]: r["status"] for r in csv.DictReader(io.StringIO(out))}
    assert rows == {
        "ann@example.org": "active",
        "bo@example.org": "unsubscribed",
        "cy@example.org": "active",
    }


def test_bad_subscriber_input_is_a_user_error_naming_the_line(config: Path, tmp_path: Path) -> None:
    code, _, err = invoke(config, "subscribers", "add", "daily", "not-an-address")
    assert code == 1
    assert "not-an-address" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("email\nok@example.org\nbroken\n")
    code, _, err = invoke(config, "subscribers", "import", "daily", str(bad))
    assert code == 1
    assert f"{bad}:3:" in err
    code, out, _ = invoke(config, "subscribers", "list", "daily", "--format", "csv")
    assert "ok@example.org" not in out  # all or nothing


def test_the_daemon_refuses_to_start_sending_without_a_secret_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGGREGATOR_SECRET_KEY", raising=False)
    config = write_config(
        tmp_path,
        """\
        feeds: []
        digests:
          daily:
            schedule: "0 7 * * *"
            to: editor@example.org
        smtp:
          host: 127.0.0.1
          from: desk@example.org
        """,
    )
    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_SECRET_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "AGGREGATOR_SECRET_KEY" in done.stderr
    code, _, err = invoke(config, "check")  # valid, but says what sending will need
    assert code == 0
    assert "AGGREGATOR_SECRET_KEY is not set" in err


def test_explain_prints_topics_and_story_or_says_it_knows_no_such_entry(config: Path) -> None:
    invoke(config, "fetch", "--all")
    code, out, err = invoke(config, "explain", "a")
    assert code == 0, err
    assert "Kyiv talks resume" in out
    assert "ukraine-war: yes" in out
    assert "story:" in out
    code, _, err = invoke(config, "explain", "https://nowhere.example/none")
    assert code == 1
    assert "no stored entry" in err


def aggregator_process(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """The installed entry point (aggregator.cli:main), not click's test runner."""
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )


def test_bad_usage_is_a_user_error_exit_1(config: Path) -> None:
    unknown = aggregator_process("--config", str(config), "fetch", "--sideways")
    assert unknown.returncode == 1
    assert "No such option '--sideways'" in unknown.stderr
    force = aggregator_process("--config", str(config), "fetch", "--force")
    assert force.returncode == 1
    assert "--force needs --feed URL" in force.stderr
    assert aggregator_process("--help").returncode == 0


def test_unknown_feed_for_fetch_feed_is_a_user_error(config: Path) -> None:
    code, _, err = invoke(config, "fetch", "--feed", "https://nowhere.test/rss")
    assert code == 1
    assert "no feed with url https://nowhere.test/rss in feeds.yaml" in err


def test_a_closed_pipe_ends_quietly(config: Path) -> None:
    invoke(config, "fetch", "--all")
    command = [sys.executable, "-m", "aggregator", "--config", str(config), "export"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        proc.stdout.close()  # `| head -1`
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert b"Traceback" not in err
    assert b"BrokenPipe" not in err


def test_status_failing_and_run_once_name_the_problem_feeds(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/ok.xml").respond_with_data(rss([Item("a", "Kyiv")]))
    httpserver.expect_request("/gone.xml").respond_with_data("", status=410)
    config = write_config(
        tmp_path,
        f"""\
        database: sqlite:///state/cli.db
        feeds:
          - url: {httpserver.url_for("/ok.xml")}
            title: Healthy
          - url: {httpserver.url_for("/gone.xml")}
            title: Retired
        """,
    )
    code, out, _ = invoke(config, "run", "--once")
    assert code == 0
    lines = config.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "gone.xml" in text)
    assert f"Retired (gone): feeds.yaml line {line}: the server says this feed is gone" in out

    code, out, _ = invoke(config, "status", "--failing")
    assert code == 0
    assert "Retired" in out
    assert "Healthy" not in out

    code, out, _ = invoke(config, "fetch", "--all")
    assert "not polled: Retired: retired: the server answered 410 Gone" in out


def test_check_names_the_line_of_a_moved_feed(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old.xml").respond_with_data(
        "", status=301, headers={"Location": "/new.xml"}
    )
    httpserver.expect_request("/new.xml").respond_with_data(rss([Item("a", "Kyiv")]))
    old = httpserver.url_for("/old.xml")
    config = write_config(tmp_path, f"database: sqlite:///state/cli.db\nfeeds:\n  - {old}\n")
    code, _, err = invoke(config, "check")
    assert (code, "note:" in err) == (0, False)  # no state yet: nothing to say
    assert not (tmp_path / "state" / "cli.db").exists()  # and none created
    for _ in range(3):
        invoke(config, "fetch", "--all")

    code, _, err = invoke(config, "check")

    assert code == 0
    line = len(config.read_text().splitlines())
    new = httpserver.url_for("/new.xml")
    assert (
        f"note: feeds.yaml line {line}: the feed has moved permanently; change its url to {new}"
        in err
    )


def test_csv_export_neutralises_formulas(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/f.xml").respond_with_data(
        rss([Item("=1", '=HYPERLINK("https://evil.test","click")', pub_date=hours_ago(1))])
    )
    config = write_config(
        tmp_path,
        f"database: sqlite:///state/cli.db\nfeeds:\n  - {httpserver.url_for('/f.xml')}\n",
    )
    invoke(config, "fetch", "--all")

    code, out, _ = invoke(config, "export", "--format", "csv")

    assert code == 0
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["title"] == """'=HYPERLINK("https://evil.test","click")"""
    assert row["id"] == "'=1"
