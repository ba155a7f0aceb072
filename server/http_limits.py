"""uvicorn's HTTP protocol with a header-size limit and a header-read deadline.

Why: uvicorn's default parser (httptools) reads request headers of any size (a 64 MiB header line was read in full)
and has no deadline for a request's headers, so half-sent requests were held forever. h11 bounds the bytes it
buffers for one incomplete event (`h11_max_incomplete_event_size`); this subclass adds the deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class DeadlineH11Protocol(H11Protocol):
    """Closes a connection whose request line and headers have not all arrived `header_timeout_s` after the
    connection opened or after its previous response (keep-alive). An upgraded websocket is left alone."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        if not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._header_deadline_passed)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:  # closed, or now a websocket
            return
        if self.conn.their_state is h11.IDLE:  # still waiting for (the rest of) a request line and headers
            self.logger.warning("dropping a connection from %s: request headers not complete within %g s",
                                self.client[0] if self.client else "?", self.header_timeout_s)
            self.transport.close()


def protocol_class(header_timeout_s: float) -> type[DeadlineH11Protocol]:
    """A subclass bound to this server's deadline (uvicorn instantiates the class itself)."""
    return type("FalanteH11Protocol", (DeadlineH11Protocol,), {"header_timeout_s": header_timeout_s})
