"""A polling round as a stream: each response is handled (parsed, classified, stored) as it
arrives, by worker threads, while the other fetches go on.

Memory stays bounded: a fetch starts only when fewer than ``in_flight`` responses are
fetching or waiting to be handled, so a round holds at most that many bodies whatever the
number of feeds (before, every body of a round was held until the last had arrived). One slow
feed delays only itself: its fetch holds one slot, its parse one worker.

The fetching side is the asyncio :class:`~aggregator.fetch.Fetcher` on this thread; handling
runs on ``workers`` threads (the parse pool has one process per core, and SQLite serialises
the writes). Results come back in request order, whatever order they completed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, cast

import httpx

from .config import FetchSettings
from .errors import FetchError
from .fetch import Fetcher
from .models import Clock, FetchRequest, FetchResult, utc_now
from .netguard import Resolver, system_resolver

__all__ = ["stream_round"]

T = TypeVar("T")
Handler = Callable[[int, FetchResult | FetchError], T]

# Responses that may wait for a free worker, beyond the fetches in flight.
DEFAULT_BACKLOG = 8


def stream_round(
    requests: Sequence[FetchRequest],
    settings: FetchSettings,
    handle: Handler[T],
    *,
    workers: int = 1,
    backlog: int = DEFAULT_BACKLOG,
    clock: Clock = utc_now,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver = system_resolver,
) -> list[T]:
    """Fetch every request and ``handle(index, outcome)`` each as it arrives; the handlers'
    results in request order. An exception from a handler is raised here, after the round."""
    stream = _Stream(handle, len(requests), max(1, workers))
    stream.start()
    try:
        asyncio.run(_produce(requests, settings, stream, backlog, clock, transport, resolver))
    finally:
        stream.finish()
    return stream.results()


async def _produce(
    requests: Sequence[FetchRequest],
    settings: FetchSettings,
    stream: _Stream[T],
    backlog: int,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None,
    resolver: Resolver,
) -> None:
    loop = asyncio.get_running_loop()
    room = asyncio.Semaphore(max(1, settings.concurrency) + max(0, backlog))

    def release() -> None:
        # A worker frees a slot from its own thread: the semaphore is the loop's, so it is
        # released on the loop, which is gone once every fetch is done (nothing waits then).
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(room.release)

    stream.on_handled = release

    async with Fetcher(settings, clock=clock, transport=transport, resolver=resolver) as fetcher:

        async def one(index: int, request: FetchRequest) -> None:
            await room.acquire()
            outcome: FetchResult | FetchError
            try:
                outcome = await fetcher.fetch(request)
            except FetchError as error:
                outcome = error
            stream.submit(index, outcome)

        async with asyncio.TaskGroup() as group:
            for index, request in enumerate(requests):
                group.create_task(one(index, request))


class _Stream(Generic[T]):
    """The handling side: a queue, worker threads, and the results in request order."""

    def __init__(self, handle: Handler[T], size: int, workers: int) -> None:
        self._handle = handle
        self._queue: queue.Queue[tuple[int, FetchResult | FetchError] | None] = queue.Queue()
        self._results: list[T | None] = [None] * size
        self._done = [False] * size
        self._failure: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._work, name=f"round-worker-{n}", daemon=True)
            for n in range(workers)
        ]
        self.on_handled: Callable[[], object] = lambda: None

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, index: int, outcome: FetchResult | FetchError) -> None:
        self._queue.put((index, outcome))

    def finish(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def results(self) -> list[T]:
        if self._failure is not None:
            raise self._failure
        if not all(self._done):
            raise RuntimeError("a response of the round was never handled")
        return cast(list[T], self._results)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            index, outcome = item
            try:
                if self._failure is None:
                    self._results[index] = self._handle(index, outcome)
                    self._done[index] = True
            except BaseException as exc:  # re-raised on the caller's thread by results()
                self._failure = self._failure or exc
            finally:
                self.on_handled()
