"""daemon_lock: one `aggregator run` per state, on SQLite files and (when
AGGREGATOR_TEST_DATABASE_URL is set) PostgreSQL advisory locks."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

import aggregator
from aggregator.daemon_lock import daemon_lock
from aggregator.errors import StorageError
from aggregator.store.database import display_url

PG_ENV = "AGGREGATOR_TEST_DATABASE_URL"
PACKAGE_DIR = Path(aggregator.__file__).resolve().parent

# The child skips aggregator/__init__.py, which imports the whole app (about a second):
# a bare package module lets it import just daemon_lock and what that needs.
HOLD_IN_CHILD = """
import sys, time, types
package = types.ModuleType("aggregator")
package.__path__ = [sys.argv[2]]
sys.modules["aggregator"] = package
from aggregator.daemon_lock import daemon_lock
with daemon_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(30)
"""


def refusal(database_url: str) -> str:
    with pytest.raises(StorageError) as caught, daemon_lock(database_url):
        pass
    return str(caught.value)


def lock_within(database_url: str, seconds: float) -> None:
    """Take and release the lock, retrying briefly: a PostgreSQL backend notices that its
    client died a moment after the kill returns."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with daemon_lock(database_url):
                return
        except StorageError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.fixture
def child_holding(database_url: str) -> Iterator[subprocess.Popen[str]]:
    """A separate python process that holds the lock until it is killed."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_IN_CHILD, database_url, str(PACKAGE_DIR)],
        stdout=subprocess.PIPE,
        text=True,
    )
    stdout = child.stdout
    assert stdout is not None
    try:
        ready, _, _ = select.select([stdout], [], [], 10)
        assert ready, "the child did not take the lock within 10 s"
        assert stdout.readline() == "locked\n"
        yield child
    finally:
        child.kill()
        child.wait(timeout=10)
        stdout.close()


def test_second_lock_is_refused_with_a_message_naming_the_holder(database_url: str) -> None:
    with daemon_lock(database_url):
        message = refusal(database_url)
    assert message.startswith("another `aggregator run` is already using ")
    assert re.search(rf"\(pid {os.getpid()}\b", message)
    assert " UTC); stop it first, or point this one at another database" in message
    url = make_url(database_url)
    sqlite = url.get_backend_name() == "sqlite"
    assert f"using {url.database if sqlite else display_url(database_url)} (" in message


def test_lock_is_released_on_exit_even_by_an_exception(database_url: str) -> None:
    with daemon_lock(database_url):
        pass
    with pytest.raises(RuntimeError), daemon_lock(database_url):
        raise RuntimeError("the daemon crashed")
    with daemon_lock(database_url):
        pass


def test_lock_of_a_killed_process_is_released(
    database_url: str, child_holding: subprocess.Popen[str]
) -> None:
    assert re.search(rf"\(pid {child_holding.pid}\b", refusal(database_url))
    child_holding.kill()
    child_holding.wait(timeout=10)
    lock_within(database_url, 2.0)


def test_sqlite_lock_file_sits_beside_the_database_in_a_created_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "new" / "state" / "aggregator.db"
    with daemon_lock(f"sqlite:///{database}"):
        lines = (tmp_path / "new" / "state" / "aggregator.db.lock").read_text().splitlines()
        assert lines[0] == str(os.getpid())
    assert not database.exists()  # the lock opens no database
    # Another spelling of the same file is the same state, so the same lock.
    monkeypatch.chdir(tmp_path)
    with daemon_lock(f"sqlite:///{database}"):
        assert "already using" in refusal("sqlite:///new/state/../state/aggregator.db")


def test_a_stale_sqlite_lock_file_from_a_crash_does_not_block(tmp_path: Path) -> None:
    lock_file = tmp_path / "aggregator.db.lock"
    lock_file.write_text("999999999\n2020-01-01T00:00:00+00:00\nleft over by a crash\n")
    with daemon_lock(f"sqlite:///{tmp_path / 'aggregator.db'}"):
        assert lock_file.read_text().splitlines()[0] == str(os.getpid())


def test_a_holder_that_has_not_written_its_details_yet_is_still_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aggregator.db'}"
    with daemon_lock(url):
        (tmp_path / "aggregator.db.lock").write_text("")
        message = refusal(url)
    assert f"already using {tmp_path / 'aggregator.db'}; stop it first" in message


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_takes_no_lock(url: str) -> None:
    with daemon_lock(url), daemon_lock(url):
        pass


def test_unreachable_postgresql_is_a_storage_error() -> None:
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://someone:secret@127.0.0.1:1/nowhere?connect_timeout=2"
    with (
        pytest.raises(StorageError, match="cannot connect to take the daemon lock") as caught,
        daemon_lock(url),
    ):
        pass
    assert "secret" not in str(caught.value)


def test_postgresql_schemas_are_separate_states(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("search_path schemas exist on PostgreSQL only")
    with daemon_lock(database_url), daemon_lock(os.environ[PG_ENV]):
        pass
