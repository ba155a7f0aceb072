"""One admitted websocket connection's life: read loop, writer, and the three ways it ends.

A session ends when the client goes (disconnect, idle timeout), when its writer fails (client gone), or when the
drain releases it (server/drain.py): then a manual commit still decoding is abandoned at once (it is not a reply,
and must not hold the drain), a reply past the grace is cut with `response.done`, and the close code is 1012.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from fastapi import WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect

from server import events
from server import protocol as p
from server.drain import CLOSE_REASON, CLOSE_RESTART
from server.session import Session

if TYPE_CHECKING:
    from server.app import AppState

log = logging.getLogger("falante.connection")
WRITER_FLUSH_S = 2.0  # time for the queued events (the cut reply's response.done) to reach the client


async def refuse_draining(ws: WebSocket, subprotocol: str | None) -> None:
    """A new connection while draining: HTTP 503 on the upgrade (a proxy retries another node); a server without
    the ASGI denial-response extension accepts, says why and closes 1012 instead."""
    message = "server restarting: connect again (another node)"
    try:
        await ws.send_denial_response(JSONResponse({"error": {"code": "server_restarting", "message": message}},
                                                   status_code=503, headers={"Retry-After": "1"}))
    except RuntimeError:
        await ws.accept(subprotocol=subprotocol)
        await ws.send_json(p.ProtocolError("server_restarting", message, type="server_error").to_event())
        await ws.close(code=CLOSE_RESTART, reason=CLOSE_REASON)


async def _read_loop(ws: WebSocket, session: Session, idle_timeout_s: float) -> None:
    try:
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), idle_timeout_s)
            except TimeoutError:
                await session.error(p.ProtocolError("idle_timeout", f"no event for {idle_timeout_s:g} s; closing"))
                return
            if message["type"] == "websocket.disconnect":
                return
            await session.handle_message(message.get("text") if message.get("text") is not None
                                         else message.get("bytes") or b"")
    except WebSocketDisconnect:
        return


def wants_extensions(ws: WebSocket) -> bool:
    """`?extensions=falante`: the client asked for falante.* events (plain OpenAI clients never see them)."""
    asked = ",".join(ws.query_params.getlist(events.EXTENSIONS_QUERY))
    return "falante" in (name.strip() for name in asked.split(","))


async def run_session(ws: WebSocket, state: AppState, subprotocol: str | None) -> None:
    """Serve an admitted connection (its admission slot is taken) until it ends; always gives the slot back."""
    settings, metrics, drain = state.settings, state.metrics, state.drain
    metrics.active_sessions.inc()
    session = Session(state.backends, settings, metrics, ws.send_text, extensions=wants_extensions(ws))
    drain.register(session)
    close_code = 1000
    tasks: list[asyncio.Task] = []
    try:
        await ws.accept(subprotocol=subprotocol)
        writer = asyncio.create_task(session.outbox.run(), name=f"writer-{session.id}")
        tasks.append(writer)
        await session.open()
        reader = asyncio.create_task(_read_loop(ws, session, settings.limits.idle_timeout_s), name=f"read-{session.id}")
        released = asyncio.create_task(drain.session_released(session), name=f"drain-{session.id}")
        tasks += [reader, released]
        await asyncio.wait({writer, reader, released}, return_when=asyncio.FIRST_COMPLETED)
        if released.done() and not reader.done():
            reader.cancel()  # a commit still decoding is dropped: the client reconnects and says it again
            await asyncio.gather(reader, return_exceptions=True)
            await session.drain_close()
            close_code = 1012
    except WebSocketDisconnect:
        pass
    finally:
        for task in tasks[1:]:
            task.cancel()
        await asyncio.gather(*tasks[1:], return_exceptions=True)
        await session.close()
        session.outbox.close()
        if tasks:
            await asyncio.wait({tasks[0]}, timeout=WRITER_FLUSH_S)
            tasks[0].cancel()
            await asyncio.gather(tasks[0], return_exceptions=True)
        state.admission.leave()
        metrics.active_sessions.dec()
        drain.unregister(session)
        if ws.client_state.name == "CONNECTED":
            try:
                await ws.close(code=close_code, reason=CLOSE_REASON if close_code == CLOSE_RESTART else None)
            except RuntimeError:  # the client went at the same moment
                pass
