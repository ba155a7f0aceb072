"""Third-party Realtime clients (openai-agents, pipecat, LiveKit's openai plugin) against the real websocket server.

Each library is used as its users use it, unchanged, pointed at falante's URL. What must hold for every test:
the server sent no `error` event and only valid GA events (the recording fixture of tests/server/conftest.py,
reused here), and the library logged nothing at ERROR (stdlib logging for openai-agents and LiveKit, loguru for
pipecat).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import numpy as np
import pytest

from tests.conftest import dev_clip
from tests.server.conftest import every_sent_event_is_a_valid_server_event  # noqa: F401 (autouse fixture)

RATE = 24_000
CLIENT_LOGGERS = ("openai.agents", "livekit", "pipecat")
LONG_REPLY = " ".join(f"Esta é a frase número {i} de uma resposta bem longa para o teste." for i in range(1, 9))


def speech(clip: str = "d03_jf_alpha.wav", silence_s: float = 3.0) -> np.ndarray:
    """A dev-set question and the silence a live microphone goes on sending (semantic_vad's cap ends the turn)."""
    return np.concatenate([dev_clip(clip), np.zeros(int(silence_s * RATE), np.float32)])


class ClientErrors:
    """ERROR records of the client libraries' loggers (and loguru's, for pipecat)."""

    def __init__(self) -> None:
        self.records: list[str] = []

    def check(self) -> None:
        assert not self.records, "client-side errors:\n" + "\n".join(self.records)


@pytest.fixture
def client_errors(caplog: pytest.LogCaptureFixture) -> Iterator[ClientErrors]:
    from loguru import logger

    errors = ClientErrors()
    caplog.set_level(logging.WARNING)
    sink = logger.add(lambda message: errors.records.append(f"loguru: {message.record['message']}"), level="ERROR")
    try:
        yield errors
    finally:
        logger.remove(sink)
    errors.records += [f"{r.name}: {r.getMessage()}" for r in caplog.records
                       if r.levelno >= logging.ERROR and r.name.startswith(CLIENT_LOGGERS)]
    errors.check()


@pytest.fixture
def server_events(every_sent_event_is_a_valid_server_event):  # noqa: F811
    """The events the server sent (parsed), to check there was no `error` and to find ids."""
    class Sent:
        def all(self) -> list[dict]:
            return [json.loads(text) for _, text in every_sent_event_is_a_valid_server_event]

        def of(self, kind: str) -> list[dict]:
            return [e for e in self.all() if e["type"] == kind]

        def no_errors(self) -> None:
            assert not self.of("error"), self.of("error")
    return Sent()
