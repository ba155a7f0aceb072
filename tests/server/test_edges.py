"""Issue 12, the HTTP edge: Host and Origin checks, the token on HTTP, header limits, no token in the logs."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from server.guards import EdgePolicy, RedactTokens, redact
from tests.conftest import fake_backends, fast_settings

WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def raw(hostport: str, request: bytes, timeout: float = 20.0) -> bytes:
    """Send one raw request, read until the server closes or the head of a 101 arrived."""
    host, port = hostport.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
            if data.startswith(b"HTTP/1.1 101") and b"\r\n\r\n" in data:
                return data


def http_get(path: str, host: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ws_upgrade(host: str, origin: str | None = None, path: str = "/v1/realtime") -> bytes:
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": WS_KEY,
               "Sec-WebSocket-Version": "13"}
    if origin is not None:
        headers["Origin"] = origin
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.") else 0


def hostport(url: str) -> str:
    return url.split("/")[2]


# ------------------------------------------------------------------------------------------------ policy (unit)
@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "LOCALHOST:1", "app.localhost:8000", "[::1]:8000",
                                  "127.9.9.9"])
def test_default_hosts_allowed(host):
    assert EdgePolicy().host_allowed(host)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "", "127.0.0.1.evil.example", "localhost.evil",
                                  "user@127.0.0.1", "127.0.0.1/x", "[::1", "192.168.1.5"])
def test_foreign_hosts_refused(host):
    assert not EdgePolicy().host_allowed(host)


def test_no_host_header_is_a_health_checker_not_a_browser():
    """Regression (loopback cluster test): HAProxy's `option httpchk GET /readyz` sends HTTP/1.0 without Host; the
    Host check answered 421, so HAProxy saw no server up. Browsers always send Host; an empty one is still refused."""
    assert EdgePolicy().host_allowed(None)
    assert not EdgePolicy().host_allowed("")


def test_configured_and_wildcard_bind_hosts():
    policy = EdgePolicy(bind_host="0.0.0.0", extra_hosts=["falante.example", "*.kiosk.example"])
    assert policy.host_allowed("192.168.1.5:8000")  # an IP literal: no DNS rebinding on a wildcard bind
    assert policy.host_allowed("falante.example") and policy.host_allowed("a.kiosk.example:443")
    assert not policy.host_allowed("kiosk.example.evil") and not policy.host_allowed("other.example")
    assert EdgePolicy(bind_host="falante.lan").host_allowed("falante.lan:8000")


@pytest.mark.parametrize("origin,host,ok", [
    (None, "127.0.0.1:8000", True),  # SDKs and curl send no Origin
    ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
    ("https://falante.example", "falante.example", True),  # behind a TLS proxy
    ("http://localhost:8000", "127.0.0.1:8000", False),  # another origin, even if it is this machine
    ("http://evil.example", "127.0.0.1:8000", False),
    ("null", "127.0.0.1:8000", False),
    ("file://", "127.0.0.1:8000", False),
    ("http://127.0.0.1:8001", "127.0.0.1:8000", False),
])
def test_origin_policy(origin, host, ok):
    assert EdgePolicy().origin_allowed(origin, host) is ok


def test_configured_origins():
    policy = EdgePolicy(extra_origins=["https://kiosk.example"])
    assert policy.origin_allowed("https://kiosk.example/", "127.0.0.1:8000")
    assert not policy.origin_allowed("null", "127.0.0.1:8000")


def test_token_paths():
    policy = EdgePolicy(auth_token="t")
    for path in ["/metrics", "//metrics/", "/chat/gradio_api/upload", "/chat//gradio_api/upload/",
                 "/chat/gradio_api/upload_progress"]:
        assert policy.needs_token(path), path
    for path in ["/healthz", "/kiosk", "/chat/", "/static/falante-client.js"]:
        assert not policy.needs_token(path), path
    assert not EdgePolicy().needs_token("/metrics")
    assert policy.token_ok("Bearer t") and not policy.token_ok("Bearer u") and not policy.token_ok(None)


# ------------------------------------------------------------------------------------------------ Host / Origin (server)
async def test_foreign_host_is_refused_on_http_and_websocket(fake_server):
    """Regression: a foreign Host (DNS rebinding) was served /metrics and a websocket session."""
    async with fake_server(fake_backends()) as (url, _app):
        hp = hostport(url)
        for path in ("/metrics", "/healthz"):
            response = await asyncio.to_thread(raw, hp, http_get(path, "evil.example:8000"))
            assert status_of(response) == 421 and b"server.allowed_hosts" in response, response[:200]
        response = await asyncio.to_thread(raw, hp, ws_upgrade("evil.example:8000"))
        assert status_of(response) == 421, response[:200]
        ok = await asyncio.to_thread(raw, hp, http_get("/healthz", hp))
        assert status_of(ok) == 200
        ok = await asyncio.to_thread(raw, hp, http_get("/healthz", "localhost:" + hp.split(":")[1]))
        assert status_of(ok) == 200


async def test_cross_site_websocket_is_refused(fake_server):
    """Regression: a page on http://evil.example (or a sandboxed `null` origin) got a session and a reply."""
    async with fake_server(fake_backends()) as (url, _app):
        hp = hostport(url)
        for origin in ("http://evil.example", "null"):
            response = await asyncio.to_thread(raw, hp, ws_upgrade(hp, origin))
            assert status_of(response) == 403 and b"allowed_origins" in response, response[:200]
        for origin in (None, f"http://{hp}"):  # no Origin (SDKs) and the server's own pages
            response = await asyncio.to_thread(raw, hp, ws_upgrade(hp, origin))
            assert status_of(response) == 101, response[:200]


async def test_configured_origin_and_host_are_served(fake_server, client_for):
    settings = fast_settings(server__allowed_origins=["https://kiosk.example"],
                             server__allowed_hosts=["falante.example"])
    async with fake_server(fake_backends(), settings) as (url, _app):
        hp = hostport(url)
        response = await asyncio.to_thread(raw, hp, ws_upgrade("falante.example", "https://kiosk.example"))
        assert status_of(response) == 101
        async with client_for(url, origin="https://kiosk.example") as c:  # a real session from that origin
            await c.send({"type": "input_audio_buffer.clear"})
            assert (await c.until("input_audio_buffer.cleared"))["type"] == "input_audio_buffer.cleared"


# ------------------------------------------------------------------------------------------------ token on HTTP
async def test_metrics_need_the_token_healthz_does_not(fake_server):
    """Regression: with auth_token set, /metrics was served without it."""
    settings = fast_settings(server__auth_token="sekret")
    async with fake_server(fake_backends(), settings) as (url, _app):
        hp = hostport(url)
        response = await asyncio.to_thread(raw, hp, http_get("/metrics", hp))
        assert status_of(response) == 401 and b"www-authenticate: Bearer" in response.lower().replace(
            b"bearer", b"Bearer")
        response = await asyncio.to_thread(raw, hp, http_get("/metrics", hp, {"Authorization": "Bearer wrong"}))
        assert status_of(response) == 401
        response = await asyncio.to_thread(raw, hp, http_get("/metrics", hp, {"Authorization": "Bearer sekret"}))
        assert status_of(response) == 200 and b"falante_active_sessions" in response
        response = await asyncio.to_thread(raw, hp, http_get("/healthz", hp))
        assert status_of(response) == 200 and b'"status":"ok"' in response


def upload(host: str, token: str | None, body: bytes, chunked: bool = False) -> bytes:
    boundary = "b0undary"
    payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.bin\"\r\n"
               f"Content-Type: application/octet-stream\r\n\r\n").encode() + body + f"\r\n--{boundary}--\r\n".encode()
    lines = ["POST /chat/gradio_api/upload HTTP/1.1", f"Host: {host}", "Connection: close",
             f"Content-Type: multipart/form-data; boundary={boundary}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"
    lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def test_gradio_upload_needs_the_token_and_has_a_limit(fake_server):
    """Regression: POST /chat/gradio_api/upload wrote files of any size to disk without the token."""
    settings = fast_settings(server__ui=True, server__auth_token="sekret", limits__max_upload_bytes=64 * 1024)
    async with fake_server(fake_backends(), settings) as (url, _app):
        hp = hostport(url)
        assert status_of(await asyncio.to_thread(raw, hp, upload(hp, None, b"x" * 100))) == 401
        assert status_of(await asyncio.to_thread(raw, hp, upload(hp, "sekret", b"x" * 100_000))) == 413
        assert status_of(await asyncio.to_thread(raw, hp, upload(hp, "sekret", b"x" * 100, chunked=True))) == 411
        ok = await asyncio.to_thread(raw, hp, upload(hp, "sekret", b"x" * 100))
        assert status_of(ok) == 200 and b"x.bin" in ok


# ------------------------------------------------------------------------------------------------ header limits
def send_huge_header(hostport_: str, total: int) -> tuple[int, bytes]:
    """Stream one header line of `total` bytes; returns (bytes the server took, its answer if any)."""
    host, port = hostport_.rsplit(":", 1)
    sent, answer = 0, b""
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {hostport_}\r\nX-Big: ".encode())
        chunk = b"a" * (1 << 20)
        try:
            while sent < total:
                s.sendall(chunk)
                sent += len(chunk)
            s.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while part := s.recv(65536):
                answer += part
        except ConnectionResetError:
            pass
    return sent, answer


async def test_huge_header_is_refused_before_it_is_read(fake_server):
    """Regression: a 64 MiB header line was read in full (RSS +237 MiB) and answered 200."""
    async with fake_server(fake_backends()) as (url, _app):
        sent, answer = await asyncio.to_thread(send_huge_header, hostport(url), 64 << 20)
    assert sent < 64 << 20, "the server read the whole 64 MiB header"
    assert answer == b"" or status_of(answer) == 400, answer[:200]


def half_sent(hostport_: str, n: int) -> list[bytes]:
    """Open n connections that send half a request and wait; returns what each read before the server closed it."""
    host, port = hostport_.rsplit(":", 1)
    socks = [socket.create_connection((host, int(port)), timeout=30) for _ in range(n)]
    try:
        for s in socks:
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {hostport_}\r\nX-Slow: ".encode())
        return [s.recv(65536) for s in socks]  # b"" when the server drops the connection; socket.timeout if never
    finally:
        for s in socks:
            s.close()


async def test_half_sent_requests_are_dropped(fake_server):
    """Regression: 100 half-sent requests were still held after 40 s (no header-read deadline). The 30 s socket
    timeout only detects a server that never drops them; the deadline under test is 0.5 s."""
    settings = fast_settings(limits__header_timeout_s=0.5)
    async with fake_server(fake_backends(), settings) as (url, _app):
        got = await asyncio.to_thread(half_sent, hostport(url), 20)
        assert got == [b""] * 20
        ok = await asyncio.to_thread(raw, hostport(url), http_get("/healthz", hostport(url)))
        assert status_of(ok) == 200  # complete requests still served


async def test_header_deadline_leaves_websockets_and_keepalive_alone(fake_server, client_for):
    settings = fast_settings(limits__header_timeout_s=0.3)
    async with fake_server(fake_backends(), settings) as (url, _app), client_for(url) as c:
        for _ in range(3):  # each round outlives the deadline
            await asyncio.sleep(0.4)
            await c.send({"type": "input_audio_buffer.clear"})
            await c.until("input_audio_buffer.cleared")


# ------------------------------------------------------------------------------------------------ token in the logs
def test_redact():
    assert redact('GET /kiosk?token=s3cr3t&voice=a HTTP/1.1') == 'GET /kiosk?token=***&voice=a HTTP/1.1'
    assert redact('"WebSocket /v1/realtime?model=x&token=abc"') == '"WebSocket /v1/realtime?model=x&token=***"'
    assert redact("Authorization: Bearer abc") == "Authorization: Bearer ***"
    assert redact("/v1/realtime?model=falante") == "/v1/realtime?model=falante"
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s"', ("1.2.3.4", "GET",
                               "/chat/?token=zz"), None)
    RedactTokens().filter(record)
    assert "zz" not in record.getMessage() and "token=***" in record.getMessage()


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_token_never_reaches_the_access_log(fake_server, client_for):
    """Regression: the browser client's ?token= was printed by uvicorn's access log (page and websocket URLs)."""
    capture = Capture()
    loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error")]
    settings = fast_settings(server__auth_token="sekret-token")
    async with fake_server(fake_backends(), settings) as (url, _app):
        levels = [lg.level for lg in loggers]
        for lg in loggers:  # after uvicorn configured its loggers (that replaces their handlers)
            lg.addHandler(capture)
            lg.setLevel(logging.INFO)
        try:
            hp = hostport(url)
            await asyncio.to_thread(raw, hp, http_get("/healthz?token=sekret-token", hp))
            async with client_for(url + "&token=sekret-token") as c:
                await c.send({"type": "input_audio_buffer.clear"})
                await c.until("input_audio_buffer.cleared")
        finally:
            for lg, level in zip(loggers, levels):
                lg.removeHandler(capture)
                lg.setLevel(level)
    logged = "\n".join(capture.lines)
    assert "/healthz?token=***" in logged and "&token=***" in logged, logged  # both requests logged
    assert "sekret-token" not in logged
