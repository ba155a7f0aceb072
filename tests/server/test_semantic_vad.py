"""semantic_vad over a real websocket with fake models: the GA-shaped session fields, and which pauses end a turn.

The FakeListener decodes and scores in audio order, so the outcome is decided by the audio, never by wall time.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from tests.conftest import fake_backends, fast_settings
from tests.fakes import FakeEndOfTurn, FakeLLM, FakeRecognizer

RATE = 24_000
PART_A = "Eu queria saber se vocês"
WHOLE = "Eu queria saber se vocês abrem no domingo?"
SEMANTIC = {"type": "semantic_vad", "eagerness": "auto", "create_response": True, "interrupt_response": True}


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * math.pi * 180 * t)).astype(np.float32)


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def hesitant_question() -> np.ndarray:
    """'Eu queria saber se vocês … abrem no domingo?': 1 s, a 1 s pause, 1.2 s, then silence."""
    return np.concatenate([quiet(0.3), tone(1.0), quiet(1.0), tone(1.2), quiet(1.0)])


def recognizer() -> FakeRecognizer:
    return FakeRecognizer(lambda seconds: PART_A if seconds < 2.0 else WHOLE)


def turn_detection(event: dict) -> dict | None:
    return event["session"]["audio"]["input"]["turn_detection"]


async def set_turn_detection(c, td: dict | None) -> dict:
    await c.send({"type": "session.update", "session": {"audio": {"input": {"turn_detection": td}}}})
    return await c.until(lambda e: e["type"] in ("session.updated", "error"))


async def test_session_update_echoes_semantic_vad_in_the_ga_shape(fake_server, client_for):
    async with fake_server() as (url, _app), client_for(url) as c:
        assert turn_detection(c.events[0])["type"] == "server_vad"  # the documented server default
        assert turn_detection(await set_turn_detection(c, {"type": "semantic_vad"})) == SEMANTIC
        updated = await set_turn_detection(c, {"type": "semantic_vad", "eagerness": "high", "create_response": False})
        assert turn_detection(updated) == {**SEMANTIC, "eagerness": "high", "create_response": False}
        updated = await set_turn_detection(c, {"eagerness": "low"})  # same type: merged
        assert turn_detection(updated) == {**SEMANTIC, "eagerness": "low", "create_response": False}
        updated = await set_turn_detection(c, {"type": "server_vad"})  # back: server_vad as it was
        assert turn_detection(updated) == {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                           "silence_duration_ms": 700, "create_response": True,
                                           "interrupt_response": True}


@pytest.mark.parametrize("td,code,param", [
    ({"type": "semantic_vad", "silence_duration_ms": 500}, "unknown_parameter", "silence_duration_ms"),
    ({"type": "semantic_vad", "threshold": 0.6}, "unknown_parameter", "threshold"),
    ({"type": "server_vad", "eagerness": "high"}, "unknown_parameter", "eagerness"),
    ({"type": "semantic_vad", "eagerness": "fast"}, "invalid_value", "eagerness"),
    ({"type": "smart_vad"}, "invalid_value", "type"),
])
async def test_wrong_turn_detection_fields_are_clear_errors(fake_server, client_for, td, code, param):
    async with fake_server() as (url, _app), client_for(url) as c:
        err = await set_turn_detection(c, td)
        assert err["type"] == "error" and err["error"]["code"] == code, err
        assert err["error"]["param"].endswith(param)
        assert turn_detection(await set_turn_detection(c, {"type": "semantic_vad"})) == SEMANTIC  # still works


def test_semantic_vad_can_be_the_session_default():
    from server.config_state import SessionConfig
    settings = fast_settings(turns__session_default="semantic_vad")
    assert SessionConfig.defaults(settings).describe_turn_detection() == SEMANTIC


async def test_hesitation_does_not_end_the_turn_and_the_question_does(fake_server, client_for):
    detector = FakeEndOfTurn()
    llm = FakeLLM("Abrimos sim, das nove às cinco.")
    backends = fake_backends(llm=llm, recognizer=recognizer(), end_of_turn=detector)
    async with fake_server(backends) as (url, app), client_for(url) as c:
        await set_turn_detection(c, {"type": "semantic_vad"})
        await c.append(hesitant_question())
        done = await c.until("response.done")
        metrics = c.of_type("falante.response.metrics")[-1]
        registry = app.state.falante.metrics.registry
    assert done["response"]["status"] == "completed"
    assert len(c.of_type("input_audio_buffer.speech_started")) == 1
    assert len(c.of_type("input_audio_buffer.speech_stopped")) == 1
    assert [e["transcript"] for e in c.of_type("conversation.item.input_audio_transcription.completed")] == [WHOLE]
    assert detector.texts == [PART_A, WHOLE]  # the pause was scored, found unfinished, and waited out
    assert [m.content for m in llm.requests[0] if m.role == "user"] == [WHOLE]
    eot = metrics["end_of_turn"]
    assert eot["type"] == "semantic_vad" and eot["decision"] == "complete" and eot["score"] == 0.9
    assert 200 <= eot["waited_ms"] < 700
    assert registry.get_sample_value("falante_turn_decisions_total",
                                     {"type": "semantic_vad", "decision": "complete"}) == 1.0
    assert registry.get_sample_value("falante_turn_wait_seconds_count",
                                     {"type": "semantic_vad", "decision": "complete"}) == 1.0


async def test_server_vad_still_cuts_the_same_hesitation(fake_server, client_for):
    backends = fake_backends(llm=FakeLLM("Certo."), recognizer=recognizer())
    async with fake_server(backends) as (url, _app), client_for(url) as c:
        await c.append(hesitant_question())
        await c.until("conversation.item.input_audio_transcription.completed")
        await c.until("conversation.item.input_audio_transcription.completed")  # part B: a turn of its own
        if not c.of_type("falante.response.metrics"):  # the reply to part A ends (completed or interrupted)
            await c.until("falante.response.metrics")
    assert len(c.of_type("input_audio_buffer.speech_stopped")) == 2  # 700 ms of silence: the pause ended a turn
    metrics = c.of_type("falante.response.metrics")
    assert metrics and metrics[0]["end_of_turn"] == {"type": "server_vad", "decision": "silence", "score": None,
                                                    "waited_ms": 700}


class HeldLLM(FakeLLM):
    """The first request yields one word and then hangs until cancelled (a speculative reply caught mid-way)."""

    async def complete(self, messages, **kw):
        if self.requests:
            async for delta in super().complete(messages, **kw):
                yield delta
            return
        self.requests.append(list(messages))
        try:
            yield "Que"
            await asyncio.Event().wait()
        except (asyncio.CancelledError, GeneratorExit):
            self.aborted += 1
            raise


async def test_speculative_reply_dropped_when_speech_resumes_leaves_no_trace(fake_server, client_for):
    said, whole = "Eu comprei um ingresso.", "Eu comprei um ingresso, mas perdi o comprovante."
    llm = HeldLLM("Sinto muito, posso ajudar.")
    backends = fake_backends(llm=llm, recognizer=FakeRecognizer(lambda s: said if s < 2.0 else whole))
    async with fake_server(backends) as (url, _app), client_for(url) as c:
        await set_turn_detection(c, {"type": "semantic_vad", "eagerness": "low"})  # finished phrases wait 600 ms
        await c.append(np.concatenate([quiet(0.3), tone(1.0), quiet(0.4)]))
        async with asyncio.timeout(10):
            while not llm.requests:  # the reply to "Eu comprei um ingresso." started before the turn ended
                await asyncio.sleep(0.01)
        assert [m.content for m in llm.requests[0] if m.role == "user"] == [said]
        await c.append(np.concatenate([tone(1.2), quiet(1.0)]))  # ... the person goes on speaking
        done = await c.until("response.done")
        await c.send({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                                    "content": [{"type": "input_text", "text": "E agora?"}]}})
        await c.send({"type": "response.create"})
        await c.until(lambda e: e["type"] == "response.done" and e["response"]["id"] != done["response"]["id"])
    assert llm.aborted == 1  # the held reply was stopped in the engine
    rid = done["response"]["id"]
    before_done = c.events[:c.events.index(done)]
    ids = {e.get("response_id") or e.get("response", {}).get("id") for e in before_done} - {None}
    assert ids == {rid}, "nothing of the dropped reply reached the client"
    deltas = "".join(e["delta"] for e in c.of_type("response.output_audio_transcript.delta") if e["response_id"] == rid)
    assert "Que" not in deltas and deltas.split() == ["Sinto", "muito,", "posso", "ajudar."]
    assert [e["transcript"] for e in c.of_type("conversation.item.input_audio_transcription.completed")] == [whole]
    assert len(c.of_type("input_audio_buffer.speech_stopped")) == 1
    history = [(m.role, m.content) for m in llm.requests[-1] if m.role != "system"]
    assert history == [("user", whole), ("assistant", "Sinto muito, posso ajudar."), ("user", "E agora?")]
    assert len(llm.requests) == 3  # dropped speculation, the confirmed (speculative, promoted) reply, the typed turn


def test_speculative_text_matches_a_final_that_differs_only_in_case_and_punctuation():
    """The speculative text is a greedy draft, the final a beam search: 'domingo.' vs 'Domingo?' is the same phrase (the
    held reply is kept), other words are not (it goes), and neither is another speech end."""
    from server.speculation import Speculation

    spec = Speculation("Vocês abrem no domingo.", 48_000, turn=None, gate=None)  # type: ignore[arg-type]
    assert spec.matches("vocês abrem no Domingo?", 48_000)
    assert not spec.matches("Vocês abrem no domingo?", 48_320)
    assert not spec.matches("Vocês abrem aos domingos?", 48_000)
