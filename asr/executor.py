"""A bounded thread pool that runs the most urgent job first (drafts, finals, partials, then the pieces of long
audio), sessions in turn.

Why not ThreadPoolExecutor: its queue is FIFO, so on a busy CPU a user's final transcript would wait behind other
sessions' partials, and a session that queues many decodes (speech sent faster than real time, long commits)
would make every other session wait behind all of them. Here jobs of one priority are served round-robin by
owner (the session, `falante.fairness.current_owner` at submit time): a session's job waits for at most one job
of each other session, not for their whole queues. Jobs whose caller was cancelled before they started are
skipped (never run): a session's stale work (a superseded partial, a final the user spoke over, a closed
session's decodes) never takes the model. A running job finishes its unit of work and its result is dropped, so
a cancel never leaves the shared model half-used.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

from falante.fairness import current_owner

T = TypeVar("T")

DRAFT = -1  # semantic_vad's end-of-turn draft: the turn's decision waits on it, and it is the cheapest decode
FINAL = 0
PARTIAL = 1
BULK = 2  # the ≤ 30 s pieces of a long final (a long manual commit): run when no live turn's decode waits

_Job = tuple[Future, Callable[[], Any]]


class PriorityExecutor:
    def __init__(self, workers: int, name: str = "asr") -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        # priority → owner → that owner's jobs in submit order; dict order is the round-robin turn order
        self._queues: dict[int, dict[Hashable | None, deque[_Job]]] = {}
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: int, fn: Callable[..., T], *args: Any, owner: Hashable | None = None) -> Future[T]:
        """Queue `fn(*args)`; `owner` defaults to the calling context's session (falante.fairness)."""
        owner = current_owner.get() if owner is None else owner
        fut: Future[T] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("executor is shut down")
            self._queues.setdefault(priority, {}).setdefault(owner, deque()).append((fut, lambda: fn(*args)))
            self._count += 1
            self._cond.notify()
        return fut

    async def run(self, priority: int, fn: Callable[..., T], *args: Any) -> T:
        """Await `fn(*args)` on a worker; cancelling the await drops the job (or its result if it already ran)."""
        return await asyncio.wrap_future(self.submit(priority, fn, *args))

    @property
    def pending(self) -> int:
        with self._cond:
            return self._count

    def pending_for(self, owner: Hashable | None) -> int:
        """Jobs of `owner` waiting for a worker (all priorities)."""
        with self._cond:
            return sum(len(q.get(owner, ())) for q in self._queues.values())

    def _pop(self) -> _Job:
        """The next job: the most urgent priority, the owner whose turn it is, its oldest job. Lock held."""
        priority = min(p for p, owners in self._queues.items() if owners)
        owners = self._queues[priority]
        owner = next(iter(owners))
        jobs = owners.pop(owner)
        job = jobs.popleft()
        if jobs:
            owners[owner] = jobs  # re-inserted last: every other waiting owner goes first
        self._count -= 1
        return job

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._count and not self._closed:
                    self._cond.wait()
                if not self._count:
                    return
                fut, job = self._pop()
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
