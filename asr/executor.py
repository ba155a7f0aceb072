"""A bounded thread pool that runs the most urgent job first (drafts, then finals, then partials).

Why not ThreadPoolExecutor: its queue is FIFO, so on a busy CPU a user's final transcript would wait behind other
sessions' partials. Jobs whose caller was cancelled before they started are skipped (never run); a running job
finishes its unit of work and its result is dropped, so a cancel never leaves the shared model half-used.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

DRAFT = -1  # semantic_vad's end-of-turn draft: the turn's decision waits on it, and it is the cheapest decode
FINAL = 0
PARTIAL = 1


class PriorityExecutor:
    def __init__(self, workers: int, name: str = "asr") -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._heap: list[tuple[int, int, Future, Callable[[], Any]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: int, fn: Callable[..., T], *args: Any) -> Future[T]:
        fut: Future[T] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("executor is shut down")
            heapq.heappush(self._heap, (priority, next(self._seq), fut, lambda: fn(*args)))
            self._cond.notify()
        return fut

    async def run(self, priority: int, fn: Callable[..., T], *args: Any) -> T:
        """Await `fn(*args)` on a worker; cancelling the await drops the job (or its result if it already ran)."""
        return await asyncio.wrap_future(self.submit(priority, fn, *args))

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if not self._heap:
                    return
                _, _, fut, job = heapq.heappop(self._heap)
            if not fut.set_running_or_notify_cancel():
                continue  # the caller went away before we started: skip the work entirely
            try:
                result = job()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller, never lost
                fut.set_exception(exc)
            else:
                fut.set_result(result)

    def shutdown(self, wait: bool = True) -> None:
        """Finish queued jobs, then stop the threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()
