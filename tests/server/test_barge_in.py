"""Barge-in with fake models over a real websocket: cancel, drop queued audio, keep only what was heard.

No wall-clock bounds (a loaded 2-core CI machine misses them): what is checked is event order and the engine state.
"""

import base64
import math

import numpy as np

from tests.conftest import fake_backends, fast_settings
from tests.fakes import FakeLLM, FakeTTS

RATE = 24_000
LONG_REPLY = " ".join(f"Esta é a frase número {i} de uma resposta bem longa para o teste." for i in range(1, 9))


def long_then_short() -> FakeLLM:
    """The first reply is long (something to interrupt); later ones are short (fast tests)."""
    calls = []

    def reply(messages) -> str:
        calls.append(1)
        return LONG_REPLY if len(calls) == 1 else "Certo."
    return reply


def tone(seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amp * np.sin(2 * math.pi * 180 * t)).astype(np.float32)


async def test_user_speech_cancels_reply_and_history_keeps_heard_part(fake_server, client_for):
    llm = FakeLLM(long_then_short(), delay=0.03)
    backends = fake_backends(llm=llm, tts=FakeTTS(rtf=0.3))
    async with fake_server(backends) as (url, app), client_for(url) as c:
        await c.append(np.concatenate([tone(1.0), np.zeros(int(0.8 * RATE), np.float32)]))
        await c.until("input_audio_buffer.speech_stopped")
        first_audio = await c.until("response.output_audio.delta")
        rid = first_audio["response_id"]
        await c.append(tone(0.6))  # ≥ barge_in_min_ms (400 ms) of speech → barge-in
        done = await c.until(lambda e: e["type"] == "response.done" and e["response"]["id"] == rid)
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"
        speech_started_ix = [i for i, e in enumerate(c.events) if e["type"] == "input_audio_buffer.speech_started"]
        assert len(speech_started_ix) == 2 and speech_started_ix[1] < len(c.events) - 1
        metrics = c.of_type("falante.response.metrics")[-1]
        assert "cancel" in metrics["latency_ms"], metrics  # measured and reported; no wall-clock gate
        assert llm.aborted == 1 and llm.active == 0  # generation was aborted, not left running
        # client reports what it played → the history holds only that
        await c.send({"type": "conversation.item.truncate", "item_id": first_audio["item_id"], "content_index": 0,
                      "audio_end_ms": 1500})
        truncated = await c.until("conversation.item.truncated")
        assert truncated["audio_end_ms"] == 1500
        # nothing more of the cancelled response arrives, even later
        await c.append(np.zeros(int(0.8 * RATE), np.float32))  # end of the user's barge-in utterance
        await c.until(lambda e: e["type"] == "response.done" and e["response"]["id"] != rid)
        done_ix = c.events.index(done)
        late = [e for e in c.events[done_ix:] if e.get("response_id") == rid and e["type"].endswith(".delta")]
        assert late == []
    history = llm.requests[-1]
    assistant = [m.content for m in history if m.role == "assistant"]
    heard_words = int(1.5 / FakeTTS().seconds_per_word)  # 1.5 s at 0.3 s per word
    assert assistant == [" ".join(LONG_REPLY.split()[:heard_words])]


async def test_short_backchannel_does_not_interrupt(fake_server, client_for):
    settings = fast_settings()
    settings.asr.vad.min_speech_ms = 100
    settings.asr.vad.barge_in_min_ms = 600
    llm = FakeLLM("Uma resposta curta. Mais uma frase para falar.", delay=0.01)
    async with fake_server(fake_backends(llm=llm, tts=FakeTTS(rtf=0.3)), settings) as (url, app), \
            client_for(url) as c:
        await c.append(np.concatenate([tone(1.0), np.zeros(int(0.8 * RATE), np.float32)]))
        await c.until("response.output_audio.delta")
        await c.append(np.concatenate([tone(0.25), np.zeros(int(0.1 * RATE), np.float32)]))  # "uhum"
        done = await c.until("response.done")
    assert done["response"]["status"] == "completed"


async def test_response_cancel_stops_audio(fake_server, client_for):
    llm = FakeLLM(long_then_short(), delay=0.02)
    async with fake_server(fake_backends(llm=llm, tts=FakeTTS(rtf=0.3))) as (url, app), client_for(url) as c:
        await c.send({"type": "conversation.item.create",
                      "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Oi"}]}})
        await c.send({"type": "response.create"})
        delta = await c.until("response.output_audio.delta")
        await c.send({"type": "response.cancel", "event_id": "cancel-1"})
        done = await c.until("response.done")
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "client_cancelled"
        # the session goes on: a new response works, and no old audio arrives after the cancellation
        await c.send({"type": "response.create"})
        await c.until(lambda e: e["type"] == "response.done" and e["response"]["id"] != delta["response_id"])
    after = c.events[c.events.index(done):]
    assert not [e for e in after if e.get("response_id") == delta["response_id"] and e["type"].endswith("delta")]
    audio = b"".join(base64.b64decode(e["delta"]) for e in c.of_type("response.output_audio.delta")
                     if e["response_id"] == delta["response_id"])
    assert len(audio) // 2 < 60 * 0.3 * RATE  # far less than the whole reply was sent
