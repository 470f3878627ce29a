"""Our polling rounds against the ``reader`` library's, on one feed farm, in one run.

    python benchmarks/speed.py [--feeds 300] [--hosts 50] [--latency-ms 20] [--repeat 3]
                               [--concurrency 50] [--per-host 8] [--workers 16]
                               [--skip-reader] [--reader-venv DIR]

Starts the farm of ``benchmarks/farm.py`` (mixed RSS/Atom feeds of ~100 KB on 127.0.0.1 …
127.0.0.K, ETag/Last-Modified/304, a sleep of ``--latency-ms`` per request) and times three
rounds, ``--repeat`` times each, printing medians:

- **cold**: the first round into a fresh temporary directory and database (every feed 200);
- **unchanged**: the next round on that state (every feed answers 304);
- **steady**: a round after ``farm.mutate(0.1)`` (10% of the feeds have a new item).

For aggregator a round is ``fetch(all_feeds=True)`` then ``publish()`` through the façade
(``fetch.concurrency``/``per_host`` from the options; ``min_interval`` does not matter with
``all_feeds``). Its stages are the summed time spent in a few stable entry points, wrapped
in the round's process only: parse (``ParsePool.run``, waiting on the worker processes,
which parse each body and classify its entries), store (``Store.record_success``/
``record_failure``), stories (``StoryBook.assign``, after the fetches) and publish; parse
and store run on the round's handler threads while fetches go on, so they may add up to
more than the "fetch wall". CPU seconds are given for the main process and for the parse
workers.

For reader (lemon24/reader) a round is ``update_feeds(scheduled=False, workers=N)``; reader
has no publish step, so compare its time with our fetch column too. It runs in its own
virtualenv, created at the first run (``python -m venv`` + ``pip install reader sgmllib3k``)
under ``~/.cache/aggregator-benchmarks/reader-venv`` and reused afterwards (delete it to
reinstall).

Each round runs in a fresh process (this script's ``_round`` entry point), so its peak RSS
(``VmHWM``) is the round's own and not a high-water mark left by earlier rounds; for
aggregator the largest parse worker is shown beside the main process. A fresh process per
round is also what ``aggregator fetch --all`` from cron costs, including starting the parse
workers; opening the database (and the Alembic check) is not timed. Every round's requests
are counted at the farm (200s / 304s) as a check that each client polled conditionally.
Temporary directories and servers are removed at the end; network goes only to 127.0.0.x
(and to PyPI when the venv is created). Run from the repository root. The machine is shared:
read the ratios more than the absolutes.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm import Farm, FarmStats

ROUNDS = ("cold", "unchanged", "steady")
HERE = Path(__file__).resolve()
DEFAULT_VENV = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "aggregator-benchmarks"
    / "reader-venv"
)
READER_REQUIREMENT = "reader>=3.12"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
STAGES = (
    "fetch wall", "parse", "store", "stories", "publish", "cpu main", "cpu workers"
)  # fmt: skip


@dataclass
class RoundResult:
    """One measured round, as the round's process reports it (plus the farm's count)."""

    seconds: float
    fetch_seconds: float
    rss_mb: float
    worker_rss_mb: float
    new_entries: int
    failed: int
    stages: dict[str, float] = field(default_factory=dict)
    served: FarmStats = field(default_factory=FarmStats)


# ------------------------------------------------------------------ inside a round's process


def _peak_rss_mb(pid: int | str = "self") -> float:
    """A process's own peak RSS (``VmHWM``). Not ``ru_maxrss``: a child started by fork and
    exec keeps the parent's RSS at the fork as its ``ru_maxrss``, so a round started from
    this script (which holds the farm) or a parse worker reported the parent's size."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return kib / 1024


_LOCK = threading.Lock()


@contextmanager
def _timing(totals: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        with _LOCK:  # the round's handler threads add up here concurrently
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - start


def _wrap_timed(owner: object, name: str, totals: dict[str, float], key: str) -> None:
    """Replace ``owner.name`` (a module's function or a class's method) by a version that
    adds its run time to ``totals[key]``, in this process only; skipped if it moved."""
    original = getattr(owner, name, None)
    if not callable(original):
        return
    totals.setdefault(key, 0.0)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        with _timing(totals, key):
            return original(*args, **kwargs)

    setattr(owner, name, timed)


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def aggregator_round(state: Path) -> dict[str, Any]:
    """One ``fetch --all`` + ``publish`` on the feeds.yaml in ``state``.

    Stages are the summed time spent in a few stable entry points; parse (and classify,
    in the same worker call) and store run on the round's handler threads while fetches go
    on, so their sum may exceed the wall time; "fetch wall" is the fetch phase as a whole."""
    import aggregator.app
    import aggregator.parse_pool
    import aggregator.store.store
    import aggregator.storylines

    stages: dict[str, float] = {}
    _wrap_timed(aggregator.parse_pool.ParsePool, "run", stages, "parse")
    _wrap_timed(aggregator.store.store.Store, "record_success", stages, "store")
    _wrap_timed(aggregator.store.store.Store, "record_failure", stages, "store")
    _wrap_timed(aggregator.storylines.StoryBook, "assign", stages, "stories")
    with aggregator.app.make_aggregator(state / "feeds.yaml") as app:
        cpu = _cpu_seconds(resource.RUSAGE_SELF)
        start = time.perf_counter()
        report = app.fetch(all_feeds=True)
        fetched = time.perf_counter()
        app.publish()
        end = time.perf_counter()
        cpu = _cpu_seconds(resource.RUSAGE_SELF) - cpu
    stages["fetch wall"] = fetched - start
    stages["publish"] = end - fetched
    stages["cpu main"] = cpu
    stages["cpu workers"] = _cpu_seconds(resource.RUSAGE_CHILDREN)  # parse workers, now ended
    return {
        "seconds": end - start,
        "fetch_seconds": fetched - start,
        "new_entries": report.new_entries,
        "failed": len(report.failed),
        "stages": stages,
    }


def reader_round(state: Path, workers: int, add: bool) -> dict[str, Any]:
    """One ``update_feeds`` of reader on the database in ``state`` (run in reader's venv)."""
    from reader import make_reader  # type: ignore[import-not-found, unused-ignore]

    db = make_reader(str(state / "reader.sqlite"))
    try:
        if add:
            for url in (state / "urls.txt").read_text(encoding="utf-8").split():
                db.add_feed(url, exist_ok=True)
        new = failed = 0
        cpu = _cpu_seconds(resource.RUSAGE_SELF)
        start = time.perf_counter()
        for result in db.update_feeds_iter(scheduled=False, workers=workers):
            if result.error is not None:
                failed += 1
            elif result.updated_feed is not None:
                new += result.updated_feed.new
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds(resource.RUSAGE_SELF) - cpu
    finally:
        db.close()
    return {
        "seconds": seconds,
        "fetch_seconds": seconds,
        "new_entries": new,
        "failed": failed,
        "stages": {"cpu main": cpu},
    }


def round_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="speed.py _round")
    parser.add_argument("client", choices=("aggregator", "reader"))
    parser.add_argument("state", type=Path)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--add", action="store_true", help="reader: add the feeds first")
    args = parser.parse_args(argv)
    with _ChildPeaks() as children:
        if args.client == "aggregator":
            figures = aggregator_round(args.state)
        else:
            figures = reader_round(args.state, args.workers, args.add)
    figures["rss_mb"] = _peak_rss_mb()
    figures["worker_rss_mb"] = children.largest_mb()
    print(json.dumps(figures))


class _ChildPeaks:
    """The peak RSS of each child process (the parse workers), sampled from /proc: ``VmHWM``
    only grows, so sampling it every 50 ms until the child ends misses at most its last
    50 ms (see :func:`_peak_rss_mb` for why not ``RUSAGE_CHILDREN``)."""

    def __init__(self) -> None:
        self._peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _ChildPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def largest_mb(self) -> float:
        return max(self._peaks.values(), default=0.0)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            for pid in _children():
                try:
                    peak = _peak_rss_mb(pid)
                except (OSError, StopIteration):
                    continue  # ended meanwhile
                self._peaks[pid] = max(self._peaks.get(pid, 0.0), peak)


def _children() -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


# ------------------------------------------------------------------ the orchestrating process


def _run_round(command: list[str], env: dict[str, str]) -> RoundResult:
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"round failed ({done.returncode}): {' '.join(command)}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return RoundResult(**figures)


def _clean_env() -> dict[str, str]:
    # Straight to 127.0.0.x: requests (reader) would otherwise honour proxy variables.
    return {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}


def _write_aggregator_config(state: Path, urls: list[str], args: argparse.Namespace) -> None:
    feeds = "".join(f"  - {url}\n" for url in urls)
    (state / "feeds.yaml").write_text(
        "site: {title: Farm, url: 'https://farm.test/'}\n"
        "database: sqlite:///state/farm.db\n"
        "output_dir: output\n"
        f"fetch: {{concurrency: {args.concurrency}, per_host: {args.per_host}, timeout: 30s}}\n"
        "topics:\n"
        "  economy: {keywords: [economic, budget, inflation, prices], phrases: [central bank]}\n"
        "  energy: {keywords: [energy, oil, grain], context: [prices, market]}\n"
        "  europe: {keywords: [Brussels, Warsaw, Berlin, Paris, Kyiv]}\n"
        f"feeds:\n{feeds}",
        encoding="utf-8",
    )


Prepare = Callable[[Path], None]
RoundCommand = Callable[[Path, str], list[str]]


def measure(
    name: str,
    farm: Farm,
    tmp: Path,
    prepare: Prepare,
    command: RoundCommand,
    args: argparse.Namespace,
) -> dict[str, list[RoundResult]]:
    """``--repeat`` times: a fresh state, then the cold, unchanged and steady rounds."""
    results: dict[str, list[RoundResult]] = {r: [] for r in ROUNDS}
    env = _clean_env()
    for repeat in range(args.repeat):
        state = tmp / f"{name}-{repeat}"
        state.mkdir()
        prepare(state)
        for round_name in ROUNDS:
            if round_name == "steady":
                farm.mutate(args.change)
            before = farm.stats()
            result = _run_round(command(state, round_name), env)
            result.served = farm.stats().minus(before)
            results[round_name].append(result)
            print(
                f"  {name:10s} #{repeat + 1} {round_name:9s} {result.seconds:6.2f} s  "
                f"200s {result.served.ok:4d}  304s {result.served.not_modified:4d}  "
                f"new entries {result.new_entries:5d}  failed {result.failed}  "
                f"RSS {result.rss_mb:4.0f} MB",
                flush=True,
            )
        shutil.rmtree(state)
    return results


def ensure_reader_venv(venv: Path) -> Path:
    """The venv's python with reader installed; created (from PyPI) when missing."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import reader, sgmllib"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"creating {venv} and installing {READER_REQUIREMENT} (once)…", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", READER_REQUIREMENT, "sgmllib3k"]
    subprocess.run(pip, check=True)
    return python


def _reader_version(python: Path) -> str:
    code = "import reader; print(reader.__version__)"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _revision() -> str:
    """The commit measured, and whether aggregator/ had uncommitted changes."""
    root = HERE.parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "aggregator"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return head + (" + uncommitted changes in aggregator/" if dirty else "")


def _median(results: list[RoundResult], pick: Callable[[RoundResult], float]) -> float:
    return statistics.median(pick(r) for r in results) if results else float("nan")


def _cpu(result: RoundResult) -> float:
    return result.stages.get("cpu main", 0.0) + result.stages.get("cpu workers", 0.0)


def _stage(results: list[RoundResult], stage: str) -> float:
    return statistics.median(r.stages.get(stage, 0.0) for r in results)


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))


def print_tables(
    ours: dict[str, list[RoundResult]], theirs: dict[str, list[RoundResult]] | None
) -> None:
    """The comparison (medians over the repeats), then our stages."""
    none: list[RoundResult] = []
    rows = []
    for name in ROUNDS:
        mine, other = ours[name], (theirs or {}).get(name, none)
        total, reader = _median(mine, lambda r: r.seconds), _median(other, lambda r: r.seconds)
        rows.append(
            [
                name,
                f"{total:.2f}",
                f"{_median(mine, lambda r: r.fetch_seconds):.2f}",
                f"{reader:.2f}" if other else "-",
                f"{reader / total:.2f}x" if other else "-",
                f"{_median(mine, _cpu):.2f}",
                f"{_median(other, _cpu):.2f}" if other else "-",
                f"{_median(mine, lambda r: r.rss_mb):.0f} + "
                f"{_median(mine, lambda r: r.worker_rss_mb):.0f}",
                f"{_median(other, lambda r: r.rss_mb):.0f}" if other else "-",
            ]
        )
    print()
    header = ["round", "ours s", "ours fetch s", "reader s", "reader/ours", "ours CPU s"]
    header += ["reader CPU s", "ours RSS MB (main + parse worker)", "reader RSS MB"]
    _table(header, rows)
    print("(ours s = fetch(all_feeds=True) + publish(); reader s = update_feeds; medians)")
    print()
    print("our stages, median s (parse: parse and classify in the workers; parse, store:")
    print("summed over the handler threads, which work while the fetches go on; cpu workers:")
    print("the parse worker processes)")
    rows = [[name] + [f"{_stage(ours[name], stage):.2f}" for stage in STAGES] for name in ROUNDS]
    _table(["round", *STAGES], rows)
    print()
    print(f"this process's peak RSS (the farm and its bodies): {_peak_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--change", type=float, default=0.1, help="share mutated before steady")
    parser.add_argument("--concurrency", type=int, default=50, help="our fetch.concurrency")
    parser.add_argument("--per-host", type=int, default=8, help="our fetch.per_host")
    parser.add_argument("--workers", type=int, default=16, help="reader's update_feeds workers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-reader", action="store_true")
    parser.add_argument("--reader-venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args()

    reader_python = None if args.skip_reader else ensure_reader_venv(args.reader_venv)
    print(
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} "
        f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, Python {platform.python_version()}"
        + (f", reader {_reader_version(reader_python)}" if reader_python else "")
    )
    print(f"aggregator: {_revision()}")
    with (
        Farm(args.feeds, args.hosts, latency_ms=args.latency_ms, seed=args.seed) as farm,
        tempfile.TemporaryDirectory(prefix="aggregator-speed-") as tmp_name,
    ):
        tmp = Path(tmp_name)
        kinds = sum(1 for url in farm.urls if url.endswith(".xml"))
        print(
            f"farm: {args.feeds} feeds ({kinds} RSS, {args.feeds - kinds} Atom), "
            f"{farm.total_bytes / args.feeds / 1024:.0f} KB each, "
            f"{farm.total_bytes / 1e6:.1f} MB, on {farm.host_count} hosts, "
            f"{args.latency_ms:g} ms per request; {args.repeat} repeats, "
            f"{args.change:.0%} changed before steady"
        )
        ours = measure(
            "aggregator",
            farm,
            tmp,
            lambda state: _write_aggregator_config(state, farm.urls, args),
            lambda state, _round: [sys.executable, str(HERE), "_round", "aggregator", str(state)],
            args,
        )
        theirs = None
        if reader_python is not None:
            python = reader_python

            def reader_command(state: Path, round_name: str) -> list[str]:
                command = [str(python), str(HERE), "_round", "reader", str(state)]
                command += ["--workers", str(args.workers)]
                return command + (["--add"] if round_name == "cold" else [])

            def write_urls(state: Path) -> None:
                (state / "urls.txt").write_text("\n".join(farm.urls) + "\n", encoding="utf-8")

            theirs = measure("reader", farm, tmp, write_urls, reader_command, args)
    print_tables(ours, theirs)
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["_round"]:
        round_main(sys.argv[2:])
    else:
        main()
