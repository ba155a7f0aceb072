"""Shared fixtures: dev-set clips, a fake-backed server on a real loopback websocket, a protocol client."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets

from falante.audio import float_to_pcm16_bytes, read_wav, resample
from falante.config import Settings
from server.app import create_app
from server.backends import Backends
from server.run import running
from tests.fakes import FakeEndOfTurn, FakeListener, FakeLLM, FakeRecognizer, FakeTTS

DEV_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ptbr-speech-dev"


def dev_manifest() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DEV_DIR / "manifest.jsonl").read_text().splitlines() if line.strip()]


def dev_clip(name: str, rate: int = 24_000) -> np.ndarray:
    audio, sr = read_wav(DEV_DIR / name)
    return resample(audio, sr, rate)


def fake_backends(llm: FakeLLM | None = None, tts: FakeTTS | None = None,
                  recognizer: FakeRecognizer | None = None, end_of_turn: FakeEndOfTurn | None = None) -> Backends:
    recognizer = recognizer or FakeRecognizer()
    tts = tts or FakeTTS()
    return Backends(recognizer=recognizer, llm=llm or FakeLLM(), tts=tts,
                    make_listener=lambda vad, language, policy: FakeListener(recognizer, vad, end_of_turn=policy),
                    loaders=[recognizer.load, tts.load], end_of_turn=end_of_turn or FakeEndOfTurn())


# Tests open several sessions at once (fuzz, isolation, the shared real server): more than the measured 2-core
# default of 2 (`limits.max_sessions`, docs/benchmarks.md "Load"); admission tests set their own limit.
TEST_MAX_SESSIONS = 8


def fast_settings(**overrides: Any) -> Settings:
    settings = Settings()
    settings.server.ui = False
    settings.limits.max_sessions = TEST_MAX_SESSIONS
    for dotted, value in overrides.items():
        section, field = dotted.split("__")
        setattr(getattr(settings, section), field, value)
    return settings


class Client:
    """A minimal raw protocol client (tests that need the official SDK use `openai` directly)."""

    def __init__(self, ws: websockets.ClientConnection):
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(event if isinstance(event, (str, bytes)) else json.dumps(event))

    async def append(self, audio: np.ndarray, chunk_ms: int = 100, rate: int = 24_000) -> None:
        step = rate * chunk_ms // 1000
        for i in range(0, len(audio), step):
            await self.send({"type": "input_audio_buffer.append",
                             "audio": base64.b64encode(float_to_pcm16_bytes(audio[i:i + step])).decode()})

    async def recv(self, timeout: float = 30.0) -> dict[str, Any]:
        import asyncio
        event = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.events.append(event)
        return event

    async def until(self, pred: Callable[[dict[str, Any]], bool] | str, timeout: float = 30.0) -> dict[str, Any]:
        """Receive until an event matches (a type name or a predicate)."""
        import asyncio
        match = (lambda e: e["type"] == pred) if isinstance(pred, str) else pred
        async with asyncio.timeout(timeout):
            while True:
                event = await self.recv(timeout)
                if match(event):
                    return event

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


@pytest.fixture
async def fake_server() -> AsyncIterator[Callable[..., Any]]:
    """Factory: `async with fake_server(backends, settings) as (url, app)`; `url` opts in to falante.* events."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def make(backends: Backends | None = None, settings: Settings | None = None):
        settings = settings or fast_settings()
        app = create_app(settings, backends or fake_backends())
        async with running(app, settings) as host:
            yield f"ws://{host}/v1/realtime?extensions=falante", app  # falante.* events on (tests read them)

    yield make


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., Any]]:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def connect(url: str, **kwargs: Any):
        async with websockets.connect(url, max_size=None, **kwargs) as ws:
            client = Client(ws)
            created = await client.recv()
            assert created["type"] == "session.created", created
            yield client

    yield connect


@pytest.fixture(scope="session")
async def real_server():
    """The embedded default (real offline models) on a loopback port, built once for the whole test run; the pages
    are mounted too, so the browser tests (tests/ui) share the one real LLM with the e2e tests."""
    settings = Settings()
    settings.server.ui = True
    settings.limits.max_sessions = TEST_MAX_SESSIONS
    settings.chat.temperature = 0.0  # greedy: the same reply on every run (a sampled 0.5B once answered "Claro, aula.")
    settings.asr.final_temperatures = [0.0]  # no unseeded temperature fallback in Whisper's finals either
    app = create_app(settings)
    async with running(app, settings) as host:
        yield host, app
