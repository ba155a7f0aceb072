"""The HTTP + websocket app: `/v1/realtime` (protocol), `/healthz`, `/readyz`, `/metrics`, `/kiosk`, `/chat`, `/static`.

Models are built and loaded once, in the app's lifespan, and shared by every session.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, WebSocket
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from falante import __version__
from falante.config import Settings
from server import events
from server import protocol as p
from server.backends import Backends, build_backends
from server.connection import refuse_draining, run_session
from server.drain import Drain
from server.guards import install_guards
from server.limits import Admission
from server.metrics import Metrics

log = logging.getLogger("falante.app")
INSECURE_KEY_PREFIX = "openai-insecure-api-key."  # browsers cannot set headers: OpenAI's subprotocol convention


class ConfigError(RuntimeError):
    """Settings that would make an unsafe or impossible server (e.g. public bind without a token)."""


@dataclass
class AppState:
    settings: Settings
    backends: Backends
    metrics: Metrics
    admission: Admission
    drain: Drain


def is_loopback(host: str) -> bool:
    """Only 127.0.0.0/8, ::1 and "localhost" are private: uvicorn binds "" (and any name) to more than loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_settings(settings: Settings) -> None:
    server = settings.server
    if not is_loopback(server.host) and not server.auth_token and not server.allow_no_auth:
        raise ConfigError(f"refusing to listen on {server.host} without authentication: set server.auth_token "
                          "(FALANTE_SERVER__AUTH_TOKEN) or, deliberately, server.allow_no_auth = true")


def create_app(settings: Settings, backends: Backends | None = None) -> FastAPI:
    check_settings(settings)
    state = AppState(settings, backends or build_backends(settings), Metrics(), Admission(settings.limits.max_sessions),
                     Drain(settings.server.drain_grace_s, on_begin=lambda: state.metrics.draining.set(1)))
    state.metrics.max_sessions.set(settings.limits.max_sessions)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.backends.start()
        try:
            yield
        finally:
            await state.backends.close()

    app = FastAPI(title="falante", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.falante = state

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__, "protocol": p.PROTOCOL_VERSION,
                             "sessions": state.admission.active, "max_sessions": state.admission.max_sessions,
                             "models": {"asr": settings.asr.model, "llm": settings.llm.model or settings.llm.kind,
                                        "tts": settings.tts.kind},
                             "load_seconds": {k: round(v, 2) for k, v in state.backends.load_seconds.items()}})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        return readiness(state)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.websocket("/v1/realtime")
    async def realtime(ws: WebSocket) -> None:
        await serve_session(ws, state)

    if settings.server.ui:
        _mount_ui(app, settings)
    install_guards(app, settings)
    return app


def readiness(state: AppState) -> JSONResponse:
    """For load balancers: 503 while draining or full, so new sessions go to another node; /healthz stays 200
    (liveness: the process is fine, do not restart it)."""
    admission = state.admission
    status = "draining" if state.drain.draining else "full" if admission.active >= admission.max_sessions else "ready"
    return JSONResponse({"status": status, "sessions": admission.active, "max_sessions": admission.max_sessions},
                        status_code=200 if status == "ready" else 503)


def _mount_ui(app: FastAPI, settings: Settings) -> None:
    from fastapi.staticfiles import StaticFiles

    import ui

    app.mount("/static", StaticFiles(directory=ui.STATIC_DIR), name="static")

    @app.get("/kiosk")
    async def kiosk() -> FileResponse:
        return FileResponse(ui.STATIC_DIR / "kiosk.html")

    @app.get("/")
    async def index() -> RedirectResponse:
        return RedirectResponse("/chat/")

    import gradio as gr

    from ui.chat import build_chat

    gr.mount_gradio_app(app, build_chat(), path="/chat", max_file_size=settings.limits.max_upload_bytes)


def _token_of(ws: WebSocket) -> tuple[str | None, str | None]:
    """(token, subprotocol to echo): Authorization header, OpenAI's browser subprotocol, or ?token=."""
    auth = ws.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), None
    offered = [s.strip() for s in ws.headers.get("sec-websocket-protocol", "").split(",") if s.strip()]
    echo = "realtime" if "realtime" in offered else None
    for proto in offered:
        if proto.startswith(INSECURE_KEY_PREFIX):
            return proto[len(INSECURE_KEY_PREFIX):], echo
    return ws.query_params.get("token"), echo


async def _refuse(ws: WebSocket, code: int, error: p.ProtocolError, subprotocol: str | None) -> None:
    await ws.accept(subprotocol=subprotocol)
    await ws.send_json(error.to_event())
    await ws.close(code=code, reason=error.message[:120])


async def serve_session(ws: WebSocket, state: AppState) -> None:
    settings, metrics = state.settings, state.metrics
    token, subprotocol = _token_of(ws)
    expected = settings.server.auth_token
    if expected and not (token and hmac.compare_digest(token.encode(), expected.encode())):
        metrics.sessions_refused.labels(reason="auth").inc()
        await _refuse(ws, 1008, p.ProtocolError("unauthorized", "missing or wrong bearer token",
                                                type="authentication_error"), subprotocol)
        return
    if state.drain.draining:
        metrics.sessions_refused.labels(reason="draining").inc()
        await refuse_draining(ws, subprotocol)
        return
    if not state.admission.try_enter():
        metrics.sessions_refused.labels(reason="full").inc()
        await _refuse(ws, 1013, p.ProtocolError(
            "server_full", f"server full: {state.admission.max_sessions} sessions are open, try again later",
            type="server_error"), subprotocol)
        return
    await run_session(ws, state, subprotocol)
