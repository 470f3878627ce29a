"""daemon_lock: one `aggregator run` per SQLite state; on PostgreSQL (when
AGGREGATOR_TEST_DATABASE_URL is set) several daemons share one state."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

import aggregator
from aggregator.daemon_lock import daemon_lock
from aggregator.errors import StorageError

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


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'aggregator.db'}"


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
    assert f"using {make_url(database_url).database} (" in message


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
    with daemon_lock(database_url):
        pass


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


def test_postgresql_daemons_share_the_state_so_none_is_refused() -> None:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set; PostgreSQL variant not run")
    with daemon_lock(base), daemon_lock(base):
        pass
