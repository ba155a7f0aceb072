"""Admission and draining: /readyz vs /healthz, SIGTERM drains (running replies finish, bounded), 1012 closes.

Event order only: gated fakes hold a reply or a decode open until the test releases them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
import pytest
import websockets

from falante.types import ChatMessage
from server.app import create_app
from server.run import running_server
from tests.conftest import Client, fake_backends, fast_settings
from tests.fakes import FakeLLM, FakeRecognizer


class GatedLLM(FakeLLM):
    """Says its first word, then waits for `release` before the rest."""

    def __init__(self) -> None:
        super().__init__("Claro, abrimos às nove horas da manhã.")
        self.release = asyncio.Event()
        self.first_token = asyncio.Event()

    async def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int = 256,
                       temperature: float = 0.7, **tools: Any) -> AsyncIterator[str]:
        first = True
        async for word in super().complete(messages, max_tokens=max_tokens, temperature=temperature):
            yield word
            if first:
                first = False
                self.first_token.set()
                await self.release.wait()


class GatedRecognizer(FakeRecognizer):
    """A manual commit's decode that never ends unless released."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def transcribe(self, audio: np.ndarray, *, language: str | None = None, partial: bool = False) -> str:
        self.started.set()
        await self.release.wait()
        return await super().transcribe(audio, language=language, partial=partial)


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def get(base: str, path: str) -> tuple[int, dict]:
    status, body = await asyncio.to_thread(http_get, base + path)
    return status, json.loads(body)


async def metrics_text(base: str) -> str:
    return (await asyncio.to_thread(http_get, base + "/metrics"))[1]


async def connect(url: str) -> Client:
    client = Client(await websockets.connect(url, max_size=None))
    assert (await client.recv())["type"] == "session.created"
    return client


async def ask(client: Client, text: str = "Que horas abre?") -> None:
    await client.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})
    await client.send({"type": "response.create"})


async def closed_code(client: Client) -> int:
    """Read until the server closes; the close code."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await client.recv()
    return closed.value.rcvd.code if closed.value.rcvd else -1


async def test_readyz_full_and_draining_while_healthz_stays_ok():
    settings = fast_settings(limits__max_sessions=1)
    app = create_app(settings, fake_backends())
    async with running_server(app, settings) as (host, server):
        base, url = f"http://{host}", f"ws://{host}/v1/realtime"
        assert await get(base, "/readyz") == (200, {"status": "ready", "sessions": 0, "max_sessions": 1})
        client = await connect(url)
        assert (await get(base, "/readyz"))[0:2] == (503, {"status": "full", "sessions": 1, "max_sessions": 1})
        assert (await get(base, "/healthz"))[0] == 200
        metrics = await metrics_text(base)
        assert "falante_active_sessions 1.0" in metrics and "falante_max_sessions 1.0" in metrics
        assert "falante_draining 0.0" in metrics
        server.handle_exit(signal.SIGTERM, None)
        assert await closed_code(client) == 1012  # idle session: closed at once
        status, body = await get(base, "/readyz")
        assert (status, body["status"]) == (503, "draining")


async def test_sigterm_lets_the_running_reply_finish_then_closes_1012_and_refuses_new_sessions():
    llm = GatedLLM()
    settings = fast_settings(server__drain_grace_s=600.0)
    app = create_app(settings, fake_backends(llm=llm))
    async with running_server(app, settings) as (host, server):
        base, url = f"http://{host}", f"ws://{host}/v1/realtime"
        busy, idle = await connect(url), await connect(url)
        await ask(busy)
        await llm.first_token.wait()
        server.handle_exit(signal.SIGTERM, None)
        assert await closed_code(idle) == 1012  # closed while the busy session's reply still runs
        assert not llm.release.is_set()
        assert (await get(base, "/readyz"))[1]["status"] == "draining"
        metrics = await metrics_text(base)
        assert "falante_draining 1.0" in metrics
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url)
        assert refused.value.response.status_code == 503
        await busy.send({"type": "response.create"})  # no new reply while draining
        error = await busy.until("error")
        assert error["error"]["code"] == "server_restarting"
        llm.release.set()
        done = await busy.until("response.done")
        assert done["response"]["status"] == "completed"
        assert await closed_code(busy) == 1012
        for _ in range(200):  # the server exits by itself once drained
            if server.should_exit:
                break
            await asyncio.sleep(0.05)
        assert server.should_exit


async def test_reply_past_the_grace_ends_with_response_done_incomplete():
    llm = GatedLLM()
    settings = fast_settings(server__drain_grace_s=0.0)
    app = create_app(settings, fake_backends(llm=llm))
    async with running_server(app, settings) as (host, server):
        client = await connect(f"ws://{host}/v1/realtime")
        await ask(client)
        await llm.first_token.wait()
        server.handle_exit(signal.SIGTERM, None)
        done = await client.until("response.done")
        assert done["response"]["status"] == "incomplete"
        assert done["response"]["status_details"] == {"type": "incomplete", "reason": None}
        assert await closed_code(client) == 1012
        assert llm.aborted == 1


async def test_manual_commit_decoding_at_sigterm_does_not_hold_the_drain(caplog):
    recognizer = GatedRecognizer()
    settings = fast_settings(server__drain_grace_s=600.0)
    app = create_app(settings, fake_backends(recognizer=recognizer))
    caplog.set_level(logging.WARNING)
    async with running_server(app, settings) as (host, server):
        client = await connect(f"ws://{host}/v1/realtime")
        await client.send({"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}})
        await client.until("session.updated")
        await client.append(np.zeros(24_000 // 2, np.float32))
        await client.send({"type": "input_audio_buffer.commit"})
        await recognizer.started.wait()
        server.handle_exit(signal.SIGTERM, None)
        assert await closed_code(client) == 1012  # the decode is still blocked: it did not hold the drain
        assert not recognizer.release.is_set()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
