"""archive.py: the public web archive of a digest (index.html and issues.atom)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from lxml import html as lxml_html

from aggregator.archive import (
    ArchivedIssue,
    issue_tag,
    newest_first,
    remove_issue_files,
    render_index,
    render_issues_feed,
    write_archive,
)
from aggregator.config import DigestConfig, SiteConfig
from aggregator.errors import RenderError

ATOM = "{http://www.w3.org/2005/Atom}"
RNG_PATH = Path(__file__).resolve().parents[2] / "shared" / "validators" / "atom.rng"

SITE = SiteConfig(title="War Desk", url="https://news.example.org/", author="War Desk editors")
DIGEST = DigestConfig(
    id="ukraine-daily",
    title="Ukraine war — daily <digest> & more",
    schedule="0 7 * * *",
    timezone=ZoneInfo("Europe/Kyiv"),
    to=("editor@example.org",),
)
END = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)


def archived(days_before: int, count: int = 12, subject: str | None = None) -> ArchivedIssue:
    end = END - timedelta(days=days_before)
    stamp = end.astimezone(DIGEST.timezone).strftime("%Y-%m-%dT%H%M")
    return ArchivedIssue(
        digest_id=DIGEST.id,
        stamp=stamp,
        subject=subject or f"Ukraine war — daily digest — {end.day} Nov 2026",
        window_end=end,
        item_count=count,
    )


ISSUES = [archived(2), archived(0, count=1), archived(1, subject='Quote " & <b>tag</b>')]


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))


def assert_valid_atom(data: bytes) -> None:
    if not RNG_PATH.exists():
        pytest.skip(f"Atom RELAX NG schema not found at {RNG_PATH} (../shared is absent)")
    schema = etree.RelaxNG(etree.parse(str(RNG_PATH)))
    schema.assertValid(parse(data))


# ---------------------------------------------------------------- index.html


def test_index_lists_issues_newest_first() -> None:
    doc = lxml_html.fromstring(render_index(SITE, DIGEST, newest_first(DIGEST.id, ISSUES)))
    assert doc.get("lang") == "en"
    assert doc.xpath("//meta[@name='viewport']/@content") == ["width=device-width, initial-scale=1"]
    assert doc.xpath("//title/text()") == ["Ukraine war — daily <digest> & more — past issues"]
    alternate = doc.xpath("//link[@rel='alternate']")[0]
    assert alternate.get("type") == "application/atom+xml"
    assert alternate.get("href") == "issues.atom"
    rows = doc.xpath("//ol/li")
    assert [row.xpath("a[1]/@href")[0] for row in rows] == [
        "2026-11-26T0700.html",
        "2026-11-25T0700.html",
        "2026-11-24T0700.html",
    ]
    assert rows[0].xpath("a[1]")[0].text_content() == "26 Nov 2026, 07:00"
    assert "1 item ·" in rows[0].text_content()
    assert "12 items ·" in rows[2].text_content()
    assert rows[0].xpath("span/a/@href") == ["2026-11-26T0700.txt"]
    hrefs = doc.xpath("//a/@href")
    assert "https://news.example.org/" in hrefs
    assert "https://news.example.org/feed.atom" in hrefs


def test_index_escapes_titles_and_subjects() -> None:
    data = render_index(SITE, DIGEST, newest_first(DIGEST.id, ISSUES))
    doc = lxml_html.fromstring(data)
    assert doc.xpath("//b") == []
    assert doc.xpath("//digest") == []
    assert 'Quote " & <b>tag</b>' in doc.text_content()
    assert b"&lt;digest&gt; &amp; more" in data


def test_index_without_issues() -> None:
    doc = lxml_html.fromstring(render_index(SITE, DIGEST, []))
    assert "No issues yet." in doc.text_content()
    assert doc.xpath("//ol") == []


def test_issues_of_another_digest_are_refused() -> None:
    stranger = ArchivedIssue("other", "2026-11-26T0700", "S", END, 1)
    with pytest.raises(RenderError, match="'other'"):
        newest_first(DIGEST.id, [stranger])


def test_a_stamp_listed_twice_is_listed_once() -> None:
    assert len(newest_first(DIGEST.id, [*ISSUES, ISSUES[0]])) == 3


# ---------------------------------------------------------------- issues.atom


def test_issue_feed_is_valid_atom() -> None:
    assert_valid_atom(render_issues_feed(SITE, DIGEST, newest_first(DIGEST.id, ISSUES)))
    assert_valid_atom(render_issues_feed(SITE, DIGEST, []))


def test_issue_feed_links_every_issue_to_its_web_copy() -> None:
    root = parse(render_issues_feed(SITE, DIGEST, newest_first(DIGEST.id, ISSUES)))
    assert root.findtext(f"{ATOM}id") == "tag:news.example.org,2026:digests/ukraine-daily"
    assert root.findtext(f"{ATOM}updated") == "2026-11-26T05:00:00+00:00"
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    base = "https://news.example.org/digests/ukraine-daily/"
    assert links == {"self": base + "issues.atom", "alternate": base + "index.html"}
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == [
        "tag:news.example.org,2026:digests/ukraine-daily/2026-11-26T0700",
        "tag:news.example.org,2026:digests/ukraine-daily/2026-11-25T0700",
        "tag:news.example.org,2026:digests/ukraine-daily/2026-11-24T0700",
    ]
    assert [[dict(link.attrib) for link in e.findall(f"{ATOM}link")] for e in entries] == [
        [{"href": base + f"{stamp}.html", "rel": "alternate", "type": "text/html"}]
        for stamp in ("2026-11-26T0700", "2026-11-25T0700", "2026-11-24T0700")
    ]
    assert entries[1].findtext(f"{ATOM}title") == 'Quote " & <b>tag</b>'
    assert entries[2].findtext(f"{ATOM}updated") == "2026-11-24T05:00:00+00:00"
    assert entries[0].findtext(f"{ATOM}summary") == "1 item, up to 26 Nov 2026, 07:00"


def test_entry_ids_survive_a_move_of_the_site() -> None:
    moved = SiteConfig(title="War Desk", url="http://news.example.org/digest-site/", author="")
    assert issue_tag(moved, "d", "s") == issue_tag(SITE, "d", "s")
    idn = SiteConfig(title="Новини", url="https://новини.укр/", author="")
    assert issue_tag(idn, "d") == "tag:xn--b1amarcd.xn--j1amh,2026:digests/d"


# ---------------------------------------------------------------- files


def test_write_archive_writes_both_files_only_when_changed(tmp_path: Path) -> None:
    changed = write_archive(tmp_path, SITE, DIGEST, ISSUES)
    directory = tmp_path / "digests" / "ukraine-daily"
    assert changed == [directory / "index.html", directory / "issues.atom"]
    ordered = newest_first(DIGEST.id, ISSUES)
    assert changed[0].read_bytes() == render_index(SITE, DIGEST, ordered)
    assert changed[1].read_bytes() == render_issues_feed(SITE, DIGEST, ordered)
    mtimes = [p.stat().st_mtime_ns for p in changed]
    assert write_archive(tmp_path, SITE, DIGEST, list(reversed(ISSUES))) == []
    assert [p.stat().st_mtime_ns for p in changed] == mtimes
    assert write_archive(tmp_path, SITE, DIGEST, ISSUES[:2]) == changed


def test_archive_is_identical_in_another_process(tmp_path: Path) -> None:
    write_archive(tmp_path / "here", SITE, DIGEST, ISSUES)
    script = (
        "import sys; from pathlib import Path; from tests.test_archive import *; "
        "write_archive(Path(sys.argv[1]), SITE, DIGEST, ISSUES)"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONHASHSEED": "777"}
    there = tmp_path / "there"
    subprocess.run([sys.executable, "-c", script, str(there)], cwd=root, env=env, check=True)
    for name in ("index.html", "issues.atom"):
        path = Path("digests") / "ukraine-daily" / name
        assert (tmp_path / "here" / path).read_bytes() == (there / path).read_bytes()


def test_remove_issue_files(tmp_path: Path) -> None:
    directory = tmp_path / "digests" / "ukraine-daily"
    directory.mkdir(parents=True)
    for name in ("a.html", "a.txt", "b.html", "b.txt", "b.eml", "index.html"):
        (directory / name).write_text(name)
    removed = remove_issue_files(tmp_path, "ukraine-daily", ["a", "b", "gone"])
    assert [p.name for p in removed] == ["a.html", "a.txt", "b.html", "b.txt", "b.eml"]
    assert sorted(p.name for p in directory.iterdir()) == ["index.html"]


@pytest.mark.parametrize("stamp", ["../index", "x/y", ""])
def test_remove_refuses_paths_outside_the_archive(tmp_path: Path, stamp: str) -> None:
    with pytest.raises(RenderError, match="not a safe file name"):
        remove_issue_files(tmp_path, "ukraine-daily", [stamp])


def test_issues_feed_passes_the_w3c_feed_validator() -> None:
    validator_dir = RNG_PATH.parent / "feedvalidator"
    if not validator_dir.is_dir():
        pytest.skip(f"the W3C Feed Validator is not at {validator_dir} (../shared is absent)")
    feed = render_issues_feed(SITE, DIGEST, newest_first(DIGEST.id, ISSUES))
    script = (
        "import sys; from feedvalidator import validateString, compatibility, logging;"
        "events = validateString(sys.stdin.buffer.read(), firstOccurrenceOnly=1,"
        " base=sys.argv[1])['loggedEvents'];"
        "print('\\n'.join(f'{type(e).__name__} {e.params}' for e in compatibility.AA(events)"
        " if isinstance(e, logging.Error)))"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "https://news.example.org/digests/ukraine-daily/issues.atom",
        ],
        input=feed,
        capture_output=True,
        cwd=validator_dir,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    # Warnings allowed: a subject may well contain "<b>" as text, which it flags.
    assert done.stdout.decode().strip() == "", "the validator found errors"
