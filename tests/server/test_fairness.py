"""Per-session fairness: the audio budget (audio_backlog for audio sent faster than real time) and the session as
owner of its work on the shared model workers. Fake models, an injected clock, event order only."""

from __future__ import annotations

import base64

import numpy as np

from falante.audio import float_to_pcm16_bytes
from falante.fairness import current_owner
from server.session import Session
from tests.conftest import fake_backends, fast_settings
from tests.fakes import FakeRecognizer

RATE = 24_000
CHUNK = 3_000  # 0.125 s at 24 kHz: exact in binary, so the budget's arithmetic is exact


class FrozenClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _chunk(amp: float = 0.0) -> dict:
    t = np.arange(CHUNK) / RATE
    audio = (amp * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(float_to_pcm16_bytes(audio)).decode()}


async def _sync(c) -> list[dict]:
    """Everything the server sent up to now (a clear is answered after the events sent before it)."""
    start = len(c.events)
    await c.send({"type": "input_audio_buffer.clear"})
    await c.until("input_audio_buffer.cleared")
    return c.events[start:]


async def test_audio_faster_than_real_time_gets_audio_backlog(fake_server, client_for, monkeypatch):
    """At 10x real time (within every other limit) audio used to be taken whole and its decodes queued on the
    shared workers; now past the burst a session gets `audio_backlog` and only its real-time budget passes."""
    clock = FrozenClock()
    monkeypatch.setattr(Session, "clock", clock)
    settings = fast_settings(limits__audio_burst_s=2.0, limits__audio_realtime_factor=1.5)
    async with fake_server(fake_backends(), settings) as (url, app), client_for(url) as c:
        for _ in range(40):  # 5 s of audio at once, no time passing: 2 s burst
            await c.send(_chunk())
        events = await _sync(c)
        backlog = [e for e in events if e["type"] == "error" and e["error"]["code"] == "audio_backlog"]
        assert len(backlog) == 40 - 16
        assert "real time" in backlog[0]["error"]["message"]
        clock.now += 1.0  # one second later: 1.5 s more may pass
        for _ in range(20):
            await c.send(_chunk())
        events = await _sync(c)
        assert sum(e["type"] == "error" for e in events) == 20 - 12
        clock.now += 100.0  # a long pause refills the burst, never more
        for _ in range(17):
            await c.send(_chunk())
        events = await _sync(c)
        assert sum(e["type"] == "error" for e in events) == 1


class OwnerRecordingRecognizer(FakeRecognizer):
    def __init__(self) -> None:
        super().__init__()
        self.owners: list[object] = []

    async def transcribe(self, audio, *, language=None, partial=False):
        self.owners.append(current_owner.get())
        return await super().transcribe(audio, language=language, partial=partial)


async def test_each_session_owns_its_decodes(fake_server, client_for):
    """The shared workers serve sessions in turn by owner (asr/executor.py); the owner is the session id, set
    for every task the session starts (its listener, its commit decodes)."""
    rec = OwnerRecordingRecognizer()
    async with fake_server(fake_backends(recognizer=rec)) as (url, app), client_for(url) as a, \
            client_for(url) as b:
        a_id, b_id = a.events[0]["session"]["id"], b.events[0]["session"]["id"]
        # a: server VAD (its listener task decodes); b: manual commit (its commit task decodes)
        await b.send({"type": "session.update", "session": {"type": "realtime", "audio": {
            "input": {"turn_detection": None}}}})
        await b.until("session.updated")
        for _ in range(8):
            await a.send(_chunk(0.3))
            await b.send(_chunk(0.3))
        for _ in range(8):
            await a.send(_chunk(0.0))
        await b.send({"type": "input_audio_buffer.commit"})
        await a.until("conversation.item.input_audio_transcription.completed")
        await b.until("conversation.item.input_audio_transcription.completed")
    assert set(rec.owners) == {a_id, b_id}
