"""The `openai` backend as a shared-tier client: retries before the first token only, then a spoken apology.

A local HTTP server plays one scripted behaviour per request (503, dropped connection, no answer, one token then a
drop, a full stream), so each test says exactly which attempt sees what.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from falante.config import OpenAISettings
from falante.types import ChatMessage
from llm.errors import LLMError
from llm.remote import OpenAICompatLanguageModel
from server.backends import Backends
from tests.conftest import fake_backends, fast_settings

MESSAGES = [ChatMessage("system", "Você é a Falante."), ChatMessage("user", "Olá!")]
REPLY = ["Olá", ", tudo", " bem?"]


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


class _Scripted(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # /v1/models
        self._json(200, {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "x", "created": 0}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        script: list[str] = self.server.script  # type: ignore[attr-defined]
        self.server.requests += 1  # type: ignore[attr-defined]
        mode = script.pop(0) if len(script) > 1 else script[0]
        if mode in ("503", "429", "400"):
            self._json(int(mode), {"error": {"message": f"scripted {mode}", "type": "server_error"}})
        elif mode == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
        elif mode == "hang":
            self.server.release.wait(30)  # type: ignore[attr-defined]
        else:  # "ok" or "one_then_drop"
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pieces = [_chunk(REPLY[0])] if mode == "one_then_drop" else \
                [_chunk(t) for t in REPLY] + [_chunk(None, "stop"), b"data: [DONE]\n\n"]
            for body in pieces:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
            self.wfile.flush()
            if mode == "one_then_drop":
                self.connection.shutdown(socket.SHUT_RDWR)
            else:
                self.wfile.write(b"0\r\n\r\n")

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def scripted() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.script, server.requests, server.release = ["ok"], 0, threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


async def _model(server, **settings) -> OpenAICompatLanguageModel:
    model = OpenAICompatLanguageModel(OpenAISettings(
        base_url=f"http://127.0.0.1:{server.server_port}/v1", retry_backoff_s=0.0, **settings))
    await model.start()
    return model


@pytest.mark.parametrize("failures", [["503", "drop"], ["429"], ["hang"]])
async def test_failures_before_the_first_token_are_retried(scripted, failures):
    scripted.script = [*failures, "ok"]
    model = await _model(scripted, retries=2, first_token_timeout_s=0.5)
    deltas = [d async for d in model.complete(MESSAGES)]
    assert deltas == REPLY
    assert scripted.requests == model.attempts == len(failures) + 1
    await model.close()


async def test_a_streamed_reply_is_never_replayed(scripted):
    scripted.script = ["one_then_drop", "ok"]
    model = await _model(scripted, retries=2)
    received = []
    with pytest.raises(LLMError, match="connection failed") as err:
        async for delta in model.complete(MESSAGES):
            received.append(delta)
    assert received == REPLY[:1] and scripted.requests == 1
    assert err.value.code == "llm_unavailable"
    await model.close()


@pytest.mark.parametrize("status, code, attempts", [("503", "llm_server_error", 3), ("400", "llm_bad_request", 1)])
async def test_after_the_retries_a_clear_error(scripted, status, code, attempts):
    scripted.script = [status]
    model = await _model(scripted, retries=2)
    with pytest.raises(LLMError, match=f"HTTP {status}") as err:
        [d async for d in model.complete(MESSAGES)]
    assert err.value.code == code and scripted.requests == attempts
    assert ("after 3 attempts" in str(err.value)) == (attempts == 3)
    await model.close()


async def test_a_tier_that_stays_down_is_an_apology_in_the_reply_and_an_error_event(scripted, fake_server,
                                                                                     client_for):
    scripted.script = ["503"]
    model = await _model(scripted, retries=1)
    base = fake_backends()
    backends = Backends(recognizer=base.recognizer, llm=model, tts=base.tts, make_listener=base.make_listener,
                        loaders=base.loaders, end_of_turn=base.end_of_turn)
    settings = fast_settings()
    async with fake_server(backends, settings) as (url, _app), client_for(url) as c:
        await c.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Oi"}]}})
        await c.send({"type": "response.create"})
        done = await c.until("response.done")
    kinds = [e["type"] for e in c.events]
    error = c.of_type("error")[0]
    assert error["error"]["code"] == "llm_failed" and "HTTP 503" in error["error"]["message"]
    spoken = "".join(e["delta"] for e in c.of_type("response.output_audio_transcript.delta"))
    assert spoken.startswith("Desculpe") and spoken.strip() == settings.chat.error_reply
    assert c.of_type("response.output_audio.delta")  # said, not only written
    assert kinds.index("error") < kinds.index("response.output_audio.delta") < kinds.index("response.done")
    assert done["response"]["status"] == "failed" and scripted.requests == 2
    await model.close()
