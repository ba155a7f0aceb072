"""The HTTP edge in front of every route: Host check (DNS rebinding), websocket Origin check (cross-site websocket
hijacking), the token on /metrics and Gradio uploads, the upload size limit, and token redaction in the logs.

Why one ASGI middleware rather than per-route checks: the Gradio app and the static files are mounted sub-apps whose
routes falante does not own, and a foreign Host must be refused before any of them answers.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from falante.config import Settings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("falante.guards")
WILDCARD_BINDS = {"", "0.0.0.0", "::"}
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def split_host(host: str) -> tuple[str, int | None] | None:
    """'Name:port' / '[v6]:port' / 'name' → (lower-case name without brackets, port); None if malformed."""
    try:
        parts = urlsplit("//" + host.strip())
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return name.lower().rstrip("."), port


def _is_ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


@dataclass
class EdgePolicy:
    """What the edge lets through; built once from the settings (`EdgePolicy.from_settings`)."""

    bind_host: str = "127.0.0.1"
    extra_hosts: list[str] = field(default_factory=list)
    extra_origins: list[str] = field(default_factory=list)
    auth_token: str | None = None
    max_upload_bytes: int = 10 * 1024 * 1024
    ui_prefix: str = "/chat"

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgePolicy:
        server = settings.server
        return cls(bind_host=server.host.strip().strip("[]").lower(), extra_hosts=list(server.allowed_hosts),
                   extra_origins=[o.rstrip("/").lower() for o in server.allowed_origins],
                   auth_token=server.auth_token or None, max_upload_bytes=settings.limits.max_upload_bytes)

    def host_allowed(self, host_header: str | None) -> bool:
        """Defaults: the bind host, localhost names, loopback addresses (any IP address on a wildcard bind: an IP
        literal is never a rebinding name); plus `server.allowed_hosts` ("*" allows any, "*.x" subdomains of x)."""
        if host_header is None:
            # no Host header at all: HTTP/1.0 health checkers (HAProxy's `option httpchk`), never a browser (DNS
            # rebinding needs a browser, and browsers always send Host), so nothing to check
            return True
        parsed = split_host(host_header)
        if parsed is None:
            return False
        name = parsed[0]
        ip = _is_ip(name)
        if name == "localhost" or name.endswith(".localhost") or (ip is not None and ip.is_loopback):
            return True
        if name == self.bind_host or (ip is not None and self.bind_host in WILDCARD_BINDS):
            return True
        for allowed in self.extra_hosts:
            allowed = allowed.strip().lower().rstrip(".")
            if allowed == "*" or allowed == name or (allowed.startswith("*.") and name.endswith(allowed[1:])):
                return True
        return False

    def origin_allowed(self, origin: str | None, host_header: str | None) -> bool:
        """No Origin (SDKs, curl): allowed, auth decides. `null` (sandboxed frames, file://): refused. Otherwise the
        page's own origin (same host and port as the request's Host) or one listed in `server.allowed_origins`."""
        if origin is None:
            return True
        origin = origin.strip().rstrip("/").lower()
        if origin in self.extra_origins or "*" in self.extra_origins:
            return origin != "null" or "null" in self.extra_origins
        try:
            parts = urlsplit(origin)
            name, port = parts.hostname, parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not name:
            return False
        request = split_host(host_header or "")
        if request is None:
            return False
        # Behind a TLS proxy the page is https://name while the Host header is "name": compare without default ports.
        def norm(port_: int | None) -> int | None:
            return None if port_ in (80, 443) else port_
        return (name.rstrip("."), norm(port)) == (request[0], norm(request[1]))

    def needs_token(self, path: str) -> bool:
        """HTTP paths that need the bearer token when one is set: /metrics and Gradio's upload endpoints."""
        if not self.auth_token:
            return False
        path = "/" + "/".join(p for p in path.split("/") if p)  # "/chat//gradio_api/upload/" is the same route
        return path == "/metrics" or (path.startswith(self.ui_prefix + "/")
                                      and path.endswith(("/upload", "/upload_progress")))

    def is_upload(self, method: str, path: str) -> bool:
        path = "/" + "/".join(p for p in path.split("/") if p)
        return method == "POST" and path.startswith(self.ui_prefix + "/") and path.endswith("/upload")

    def token_ok(self, authorization: str | None) -> bool:
        if not self.auth_token:
            return True
        auth = authorization or ""
        if not auth.lower().startswith("bearer "):
            return False
        return hmac.compare_digest(auth[7:].strip().encode(), self.auth_token.encode())


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers, first value wins (latin-1 as in the ASGI spec)."""
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out


class EdgeGuard:
    """ASGI middleware applying an `EdgePolicy`; refusals are plain-text HTTP answers that say why."""

    def __init__(self, app: ASGIApp, policy: EdgePolicy) -> None:
        self.app, self.policy = app, policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host")
        refusal: tuple[int, str] | None = None
        extra: list[tuple[bytes, bytes]] = []
        if not self.policy.host_allowed(host):
            refusal = (421, (f"falante: Host {host!r} is not served here; add it to server.allowed_hosts if it "
                             "is this server's name\n"))
        elif kind == "websocket" and not self.policy.origin_allowed(headers.get("origin"), host):
            refusal = (403, (f"falante: websocket from origin {headers.get('origin')!r} refused; add it to "
                             "server.allowed_origins to allow that page\n"))
        elif kind == "http" and self.policy.needs_token(scope["path"]) and \
                not self.policy.token_ok(headers.get("authorization")):
            refusal = (401, "falante: this endpoint needs the server's token: Authorization: Bearer TOKEN\n")
            extra = [(b"www-authenticate", b'Bearer realm="falante"')]
        elif kind == "http" and self.policy.is_upload(scope["method"], scope["path"]):
            refusal = self._upload_refusal(headers.get("content-length"))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        log.warning("refused %s %s: %s", kind, scope.get("path"), refusal[1].strip())
        await _answer(kind, scope, receive, send, *refusal, extra)

    def _upload_refusal(self, content_length: str | None) -> tuple[int, str] | None:
        limit = self.policy.max_upload_bytes
        if content_length is None or not content_length.strip().isdigit():
            return 411, "falante: uploads need a Content-Length\n"
        if int(content_length) > limit:
            return 413, f"falante: upload over the limit of {limit} bytes (limits.max_upload_bytes)\n"
        return None


async def _answer(kind: str, scope: Scope, receive: Receive, send: Send, status: int, body: str,
                  extra: list[tuple[bytes, bytes]]) -> None:
    data = body.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(data)).encode()),
               *extra]
    if kind == "http":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
        return
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": data})
    else:  # servers without the denial extension answer a close before accept with a bare 403
        await send({"type": "websocket.close", "code": 1008})


# ------------------------------------------------------------------------------------------------ log redaction
_TOKEN_QUERY = re.compile(r"(?i)([?&;](?:token|api_key|access_token)=)[^&;\s\"']*")
_BEARER = re.compile(r"(?i)(bearer\s+|openai-insecure-api-key\.)[^\s,\"']+")


def redact(text: str) -> str:
    """Replace token values in query strings, bearer headers and the browser subprotocol with ***."""
    return _BEARER.sub(r"\1***", _TOKEN_QUERY.sub(r"\1***", text))


class RedactTokens(logging.Filter):
    """A logging filter: the browser's `?token=` must not reach the access log (uvicorn logs the full URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


REDACTED_LOGGERS = ("uvicorn.access", "uvicorn.error")  # filters do not apply to records of child loggers


def install_log_redaction() -> None:
    """Idempotent: add the filter to uvicorn's loggers (call after uvicorn configured logging)."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def install_guards(app: Any, settings: Settings) -> None:
    """Wrap the app in the edge guard (outermost middleware)."""
    app.add_middleware(EdgeGuard, policy=EdgePolicy.from_settings(settings))
