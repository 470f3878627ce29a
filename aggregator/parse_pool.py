"""Feed parsing in worker processes, each parse bounded by a deadline.

feedparser has quadratic paths (``pop_content`` on an item of repeated ``&lt;!--``: 27 s
for 700 kB, minutes for a few MB) and a thread cannot be stopped mid-parse, so a parse
runs in a child process that is killed when its deadline passes. The feed then fails with
a ``ParseError`` saying so, a fresh worker takes the slot and the round goes on.

Workers are started lazily (importing feedparser and lxml in a new interpreter takes a
few tenths of a second) and reused across calls. Each worker serves one call at a time:
idle workers wait in a queue, so ``parse`` may be called from several threads at once.
``run`` takes the job as well (the round's is ``analysis.analyse``: parse, then classify).
"""

from __future__ import annotations

import faulthandler
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Literal, TypeVar, cast

from .errors import ParseError
from .models import FetchResult, ParsedFeed
from .parse import parse_feed

__all__ = ["DEFAULT_PARSE_DEADLINE", "ParsePool"]

log = logging.getLogger(__name__)

DEFAULT_PARSE_DEADLINE = 10.0
"""Seconds one feed may take to parse; real feeds of a few MB take well under one."""

# A new interpreter importing feedparser and lxml: tenths of a second, far more on a host
# that is swapping. Not counted against the parse deadline, which is the feed's alone.
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 5.0
# How long past its deadline a worker whose parent never killed it ends itself.
_ORPHAN_GRACE = 30.0

StartMethod = Literal["spawn", "forkserver"]

# What a worker sends back: the job's result, a ParseError's message, or an unexpected
# exception (a bug in parse.py) as "Type: message" plus its traceback.
_Reply = (
    tuple[Literal["ok"], object] | tuple[Literal["error"], str] | tuple[Literal["bug"], str, str]
)
_READY = "ready"

T = TypeVar("T")
Job = Callable[[FetchResult], T]  # what a worker runs: parse_feed, or analysis.analyse


class _WorkerLost(Exception):
    """The worker can no longer answer; ``reason`` says why, for the feed's error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Worker:
    """One child process running ``_serve`` and the parent's end of its pipe."""

    def __init__(self, context: SpawnContext | ForkServerContext) -> None:
        parent_end, child_end = context.Pipe()
        self._conn: Connection = parent_end
        self._process: BaseProcess = context.Process(
            target=_serve, args=(child_end,), name="aggregator-parse", daemon=True
        )
        self._process.start()
        # Only the child may hold its end: otherwise its death would never read as EOF here.
        child_end.close()
        self._ready = False

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def wait_ready(self, timeout: float) -> None:
        if self._ready:
            return
        if self._receive(timeout) != _READY:
            raise _WorkerLost("the parse worker sent an unexpected greeting")
        self._ready = True

    def call(self, job: Job[object], result: FetchResult, deadline: float) -> _Reply:
        """Send one job and wait for its reply; ``TimeoutError`` past the deadline."""
        try:
            self._conn.send((job, result, deadline))
        except (OSError, ValueError) as exc:
            raise _WorkerLost(f"could not reach the parse worker ({exc})") from exc
        reply = self._receive(deadline)
        if not (isinstance(reply, tuple) and reply and reply[0] in ("ok", "error", "bug")):
            raise _WorkerLost("the parse worker sent an unexpected reply")
        return reply

    def _receive(self, timeout: float) -> object:
        try:
            ready = wait([self._conn, self._process.sentinel], timeout)
            if self._conn in ready:
                return self._conn.recv()
        except (EOFError, OSError, ValueError):
            pass  # it died mid-reply, or the pool was closed under us: reported below
        else:
            if not ready:
                raise TimeoutError
        raise _WorkerLost(self._death())

    def _death(self) -> str:
        try:
            self._process.join(_STOP_TIMEOUT)
            code = self._process.exitcode
        except ValueError:  # close() already stopped and released it
            return "the parse worker was stopped"
        if code is None:
            return "the parse worker stopped answering"
        if code < 0:
            name = _signal_name(-code)
            hint = ", perhaps for using too much memory" if name == "SIGKILL" else ""
            return f"the parse worker was killed by {name}{hint}"
        return f"the parse worker exited unexpectedly (exit code {code})"

    def stop(self) -> None:
        self._conn.close()
        # Killed, not asked: it may be deep in a parse that would never look at the pipe.
        self._process.kill()
        self._process.join(_STOP_TIMEOUT)
        if self._process.exitcode is not None:
            self._process.close()


class ParsePool:
    """Parses fetched feeds in ``workers`` child processes, each parse under a deadline.

    ``workers=0`` (or ``deadline=None`` on a call) parses in this process, unbounded: for
    tests and small setups that trust their feeds. Close the pool (or use it as a context
    manager) to stop the workers.
    """

    def __init__(self, workers: int = 1, *, start_method: StartMethod = "spawn") -> None:
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, not {workers}")
        # Never fork: the parent runs asyncio, threads and database connections, whose
        # locks and sockets a forked child would inherit mid-use.
        self._context: SpawnContext | ForkServerContext = multiprocessing.get_context("spawn")
        if start_method == "forkserver":
            forkserver = multiprocessing.get_context("forkserver")
            # The server imports the parser once; each worker, replacements included, is
            # then a fork of it (milliseconds) instead of a fresh interpreter.
            forkserver.set_forkserver_preload([__name__])
            self._context = forkserver
        self._workers = workers
        # LIFO so that a warm worker is reused before an empty slot starts another one.
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(workers):
            self._idle.put(None)
        self._live: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def pids(self) -> tuple[int, ...]:
        """The worker processes running now (started lazily, so none before a first parse)."""
        with self._lock:
            return tuple(w.pid for w in self._live if w.pid is not None)

    def parse(
        self, result: FetchResult, *, deadline: float | None = DEFAULT_PARSE_DEADLINE
    ) -> ParsedFeed:
        """``parse_feed(result)`` in a worker; ParseError if it fails or takes too long."""
        return self.run(parse_feed, result, deadline=deadline)

    def run(
        self, job: Job[T], result: FetchResult, *, deadline: float | None = DEFAULT_PARSE_DEADLINE
    ) -> T:
        """``job(result)`` in a worker; ParseError if it fails or takes too long.

        ``job`` is pickled to the worker with each call: a module-level function, or a
        ``functools.partial`` of one with small picklable arguments.
        """
        if self._closed:
            raise RuntimeError("this ParsePool is closed")
        if deadline is None or self._workers == 0:
            return job(result)
        if deadline <= 0:
            raise ValueError(f"deadline must be positive, not {deadline}")
        worker = self._idle.get()
        keep: _Worker | None = None
        try:
            worker = self._ready_worker(worker, result.url)
            reply = self._call(worker, job, result, deadline)
            # After an unexpected exception its state is unknown (a MemoryError, say).
            keep = None if reply[0] == "bug" else worker
        finally:
            # Any failure leaves a reply pending or the worker gone: its slot starts a new
            # one when next needed (not now: on a small host it would compete with the
            # next parse, and close() may be about to stop it).
            if keep is None:
                self._forget(worker)
            self._idle.put(keep)
        return cast(T, _outcome(result.url, reply))

    def close(self) -> None:
        """Stop every worker, including any in the middle of a parse. Idempotent."""
        with self._lock:
            self._closed = True
            workers = list(self._live)
            self._live.clear()
        for worker in workers:
            worker.stop()

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------ workers

    def _ready_worker(self, worker: _Worker | None, url: str) -> _Worker:
        if worker is not None and worker.alive:
            return worker
        self._forget(worker)
        worker = self._start(url)
        try:
            worker.wait_ready(_START_TIMEOUT)
        except (TimeoutError, _WorkerLost) as exc:
            self._forget(worker)
            reason = getattr(exc, "reason", f"none started within {_START_TIMEOUT:g} s")
            raise ParseError(url, f"no parse worker: {reason}") from None
        return worker

    def _call(
        self, worker: _Worker, job: Job[object], result: FetchResult, deadline: float
    ) -> _Reply:
        started = time.monotonic()
        try:
            return worker.call(job, _picklable(result), deadline)
        except TimeoutError:
            message = (
                f"parsing took longer than {deadline:g} s and was abandoned; "
                "the feed's markup is pathological or too large"
            )
            raise ParseError(result.url, message) from None
        except _WorkerLost as exc:
            if self._closed:
                raise ParseError(result.url, "parsing was abandoned: shutting down") from None
            elapsed = time.monotonic() - started
            message = f"{exc.reason} after {elapsed:.1f} s of parsing this feed"
            raise ParseError(result.url, message) from None

    def _start(self, url: str) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("this ParsePool is closed")
            try:
                worker = _Worker(self._context)
            except OSError as exc:  # out of processes, memory or file descriptors
                raise ParseError(url, f"could not start a parse worker: {exc}") from exc
            self._live.add(worker)
            return worker

    def _forget(self, worker: _Worker | None) -> None:
        if worker is None:
            return
        with self._lock:
            owned = worker in self._live
            self._live.discard(worker)
        # Whoever removes it from the set stops it, so close() and a failing call never
        # both do.
        if owned:
            worker.stop()


# ---------------------------------------------------------------- helpers


def _outcome(url: str, reply: _Reply) -> object:
    if reply[0] == "ok":
        return reply[1]
    if reply[0] == "error":
        raise ParseError(url, reply[1])
    _, summary, remote_traceback = reply
    # A bug in parse.py, not a broken feed: worth a traceback in the log, while the feed
    # fails alone as it would had feedparser itself raised.
    log.error("parsing %s raised in the parse worker:\n%s", url, remote_traceback)
    raise ParseError(url, f"parser failed: {summary}")


def _picklable(result: FetchResult) -> FetchResult:
    # ``headers`` is typed as any Mapping; some (MappingProxyType, httpx.Headers) do not
    # pickle or would drag their library into the worker. fetch.py passes a dict.
    if isinstance(result.headers, dict):
        return result
    return replace(result, headers=dict(result.headers))


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _error_message(exc: ParseError) -> str:
    """The message as passed to ParseError: its str() is "url: message"."""
    return str(exc).removeprefix(f"{exc.url}: ")


# ---------------------------------------------------------------- the worker process


def _serve(conn: Connection) -> None:
    """Run each (job, FetchResult, deadline) received until the pool closes its end of the
    pipe."""
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        conn.send(_READY)
    except OSError:
        return  # the parent is gone (or gave up on us) already
    with open(os.devnull, "w") as void:
        while True:
            try:
                job, result, deadline = conn.recv()
            except (EOFError, OSError):
                return  # the pool closed, or its process is gone
            # The parent kills a parse at its deadline. Should the parent be gone (killed, so
            # close() never ran), this C watchdog still ends the process soon after: a thread
            # of ours could not, as a parse can hold the GIL for minutes.
            faulthandler.dump_traceback_later(deadline + _ORPHAN_GRACE, exit=True, file=void)
            reply = _answer(job, result)
            faulthandler.cancel_dump_traceback_later()
            conn.send(reply)


def _answer(job: Job[object], result: FetchResult) -> _Reply:
    try:
        return ("ok", job(result))
    except ParseError as exc:
        return ("error", _error_message(exc))
    except Exception as exc:
        return ("bug", f"{type(exc).__name__}: {exc}", traceback.format_exc())
