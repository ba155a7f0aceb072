"""Serving: one uvicorn config for the CLI and the tests, so both run with the same websocket limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from falante.config import Settings
from server.guards import install_log_redaction
from server.http_limits import protocol_class
from server.drain import DrainingServer

HARD_FRAME_FACTOR = 4  # frames over 4× the soft limit close the connection (1009); smaller oversize → error event


def uvicorn_config(app: FastAPI, settings: Settings, port: int | None = None) -> uvicorn.Config:
    limits = settings.limits
    config = uvicorn.Config(
        app, host=settings.server.host, port=settings.server.port if port is None else port,
        ws_max_size=limits.max_message_bytes * HARD_FRAME_FACTOR, ws_max_queue=32,
        ws_ping_interval=20.0, ws_ping_timeout=20.0, log_level="info", lifespan="on", timeout_graceful_shutdown=5,
        # h11, not httptools: h11 bounds the header bytes it buffers; the subclass adds a header-read deadline
        http=protocol_class(limits.header_timeout_s), h11_max_incomplete_event_size=limits.max_header_bytes,
    )
    install_log_redaction()  # after uvicorn.Config configured its loggers: no ?token= in the access log
    return config


def make_server(app: FastAPI, config: uvicorn.Config) -> DrainingServer:
    """uvicorn whose SIGTERM drains the app's sessions first (server/drain.py)."""
    return DrainingServer(config, app.state.falante.drain)


@asynccontextmanager
async def running(app: FastAPI, settings: Settings) -> AsyncIterator[str]:
    """Run the app on a free loopback port inside this event loop; yields "127.0.0.1:PORT"."""
    async with running_server(app, settings) as (host, _):
        yield host


@asynccontextmanager
async def running_server(app: FastAPI, settings: Settings) -> AsyncIterator[tuple[str, DrainingServer]]:
    """`running`, also yielding the server (tests send it SIGTERM through `handle_exit`)."""
    config = uvicorn_config(app, settings, port=0)
    config.host, config.log_level = "127.0.0.1", "warning"
    server = make_server(app, config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # start-up failed: raise its error
            raise RuntimeError("server exited during start-up")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await task
