"""Graceful draining for rolling restarts behind a load balancer.

SIGTERM (or `Drain.begin()`) makes `/readyz` say not-ready and refuses new sessions (HTTP 503 on the upgrade, so a
proxy retries another node); every open session finishes the reply it is speaking, bounded by
`server.drain_grace_s` for the whole drain, and is then closed with code 1012 ("service restart") so its client
reconnects elsewhere. A reply still running at the deadline ends with `response.done` (`incomplete`), never
silently. Only then does uvicorn's own shutdown run, with nothing left to wait for.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from server.session import Session

log = logging.getLogger("falante.drain")

CLOSE_RESTART = 1012  # RFC 6455 "service restart": the client should reconnect (to another node)
CLOSE_REASON = "server restarting: reconnect"
CLOSE_MARGIN_S = 2.0  # after the grace: time for the cut replies' response.done and the close frames to go out


class Drain:
    """The drain state of one app: which sessions are open, whether draining started and its deadline."""

    def __init__(self, grace_s: float, clock: Callable[[], float] = time.monotonic,
                 on_begin: Callable[[], None] | None = None) -> None:
        self.grace_s = grace_s
        self._clock = clock
        self._on_begin = on_begin
        self.deadline: float | None = None
        self._started = asyncio.Event()
        self._sessions: set[Session] = set()
        self._empty = asyncio.Event()
        self._empty.set()

    @property
    def draining(self) -> bool:
        return self._started.is_set()

    def begin(self) -> None:
        """Start draining (idempotent): no new session, no new turn, open sessions close once quiet."""
        if self.draining:
            return
        self.deadline = self._clock() + self.grace_s
        log.info("draining: %d session(s) open, grace %.0f s", len(self._sessions), self.grace_s)
        for session in self._sessions:
            session.closing = True
        self._started.set()
        if self._on_begin is not None:
            self._on_begin()

    def register(self, session: Session) -> None:
        session.closing = self.draining
        self._sessions.add(session)
        self._empty.clear()

    def unregister(self, session: Session) -> None:
        self._sessions.discard(session)
        if not self._sessions:
            self._empty.set()

    def remaining(self) -> float:
        return 0.0 if self.deadline is None else max(0.0, self.deadline - self._clock())

    async def session_released(self, session: Session) -> None:
        """Returns when the drain wants `session` closed: draining and its reply done (or the grace spent)."""
        await self._started.wait()
        await session.wait_idle(self.remaining)

    async def wait_empty(self, timeout: float) -> bool:
        """Wait until every session has closed; False if some are still open after `timeout`."""
        try:
            await asyncio.wait_for(self._empty.wait(), timeout)
            return True
        except TimeoutError:
            return False


class DrainingServer(uvicorn.Server):
    """uvicorn whose first SIGTERM/SIGINT drains the sessions before uvicorn's own shutdown; a second SIGINT
    forces the exit as in uvicorn (a second SIGTERM, e.g. the kubelet's after a preStop drain, changes nothing)."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain
        self._drain_task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain.draining or self._loop is None or not self.started:
            if sig == signal.SIGINT or self._loop is None or not self.started:
                super().handle_exit(sig, frame)
            return
        # not added to uvicorn's _captured_signals: a drained server exits with status 0 instead of re-raising it
        self._loop.call_soon_threadsafe(self.start_drain)

    def start_drain(self) -> None:
        """On the event loop: drain, then let uvicorn shut down."""
        if self._drain_task is None:
            self._drain_task = asyncio.create_task(self._drain_then_exit(), name="drain")

    async def _drain_then_exit(self) -> None:
        self.drain.begin()
        if not await self.drain.wait_empty(self.drain.grace_s + CLOSE_MARGIN_S):
            log.warning("drain: sessions still open after the grace; uvicorn closes them")
        self.should_exit = True
