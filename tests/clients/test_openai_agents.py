"""The OpenAI Agents SDK (`openai-agents`, RealtimeRunner) talks to falante unchanged.

Fast tier: fake models behind the real websocket server. Its default session settings are kept (voice "ash",
semantic_vad, gpt-4o-mini-transcribe transcription); the agent's own events must contain no `error`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from falante.audio import float_to_pcm16_bytes
from tests.clients.conftest import LONG_REPLY, RATE, speech
from tests.conftest import fake_backends
from tests.fakes import FakeLLM, FakeTTS

pytest.importorskip("agents.realtime")


class AgentRun:
    """One RealtimeSession and what it reported: its events, history and the raw server events."""

    def __init__(self, session: Any, tracker: Any = None, play_events: int | None = None) -> None:
        self.session, self.tracker = session, tracker
        self.play_events = play_events  # audio events the app "plays" (None: all): what a barge-in truncates to
        self.played = 0
        self.events: list[Any] = []
        self.history: list[Any] = []

    async def until(self, pred: Callable[[Any], bool], timeout: float = 30.0) -> Any:
        async with asyncio.timeout(timeout):
            async for event in self.session:
                self.events.append(event)
                if event.type == "audio" and self.tracker and (self.play_events is None
                                                               or self.played < self.play_events):
                    self.tracker.on_play_bytes(event.item_id, event.content_index, event.audio.data)
                    self.played += 1
                if event.type == "history_updated":
                    self.history = list(event.history)
                if pred(event):
                    return event

    def errors(self) -> list[Any]:
        return [e for e in self.events if e.type == "error"
                or (e.type == "raw_model_event" and e.data.type in ("error", "exception"))]

    def raw(self, kind: str) -> list[dict]:
        return [e.data.data for e in self.events if e.type == "raw_model_event"
                and e.data.type == "raw_server_event" and e.data.data.get("type") == kind]

    def messages(self, role: str) -> list[str]:
        out = []
        for item in self.history:
            if getattr(item, "type", None) == "message" and item.role == role:
                out.append(" ".join((getattr(c, "transcript", None) or getattr(c, "text", None) or "")
                                    for c in item.content).strip())
        return out

    async def speak(self, audio, pace: float = 0.0) -> None:
        """Send 100 ms chunks; `pace` 1.0 = at real time, as a microphone (the real models' tests)."""
        step = RATE // 10
        for i in range(0, len(audio), step):
            await self.session.send_audio(float_to_pcm16_bytes(audio[i:i + step]))
            await asyncio.sleep(0.1 * pace)


async def open_agent(host: str, tracker: Any = None):
    """A RealtimeRunner session with the SDK's defaults; `tracker`: the app reports playback (a RealtimePlaybackTracker,
    as apps with their own audio output do), so what a barge-in truncates does not depend on the clock."""
    from agents.realtime import RealtimeAgent, RealtimeRunner

    runner = RealtimeRunner(RealtimeAgent(name="Falante", instructions="Responda em português, brevemente."))
    config: dict[str, Any] = {"url": f"ws://{host}/v1/realtime", "api_key": "local"}
    if tracker is not None:
        config["playback_tracker"] = tracker
    return await runner.run(model_config=config)


def ended(event: Any) -> bool:
    return event.type == "agent_end"


async def test_agents_typed_and_spoken_turns_with_its_default_voice(fake_server, client_errors, server_events):
    from agents.realtime.model import RealtimePlaybackTracker

    tracker = RealtimePlaybackTracker()
    async with fake_server(fake_backends(llm=FakeLLM("Bom dia! Posso ajudar?"))) as (url, _app):
        session = await open_agent(url.split("/")[2], tracker)
        async with session:
            run = AgentRun(session, tracker)  # the whole reply is played before the user speaks
            await session.send_message("Oi, tudo bem?")
            await run.until(ended)
            await run.speak(speech())
            await run.until(lambda e: len(run.raw("response.done")) == 2 and len(run.messages("user")) == 2
                            and all(run.messages("user")))
    assert run.errors() == []
    server_events.no_errors()
    updated = server_events.of("session.updated")[-1]["session"]
    assert updated["audio"]["output"]["voice"] == "ash"  # the SDK's default voice, kept
    assert updated["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"  # and the rest of its update
    assert updated["instructions"] == "Responda em português, brevemente."
    transcript = server_events.of("conversation.item.input_audio_transcription.completed")[0]["transcript"]
    assert run.messages("user") == ["Oi, tudo bem?", transcript]  # the spoken turn reached the agent's history
    assert run.messages("assistant") == ["Bom dia! Posso ajudar?"] * 2


async def test_agents_barge_in_truncates_the_reply_in_its_history(fake_server, client_errors, server_events):
    replies = iter([LONG_REPLY, "Certo."])
    backends = fake_backends(llm=FakeLLM(lambda messages: next(replies), delay=0.03), tts=FakeTTS(rtf=0.3))
    from agents.realtime.model import RealtimePlaybackTracker

    tracker = RealtimePlaybackTracker()
    async with fake_server(backends) as (url, _app):
        session = await open_agent(url.split("/")[2], tracker)
        async with session:
            run = AgentRun(session, tracker, play_events=10)  # 10 deltas of 200 ms played: 2 s of the reply
            await session.send_message("Conte uma história longa.")
            await run.until(lambda e: e.type == "audio" and run.played == 10)
            await run.speak(speech())  # the user talks over the reply
            await run.until(lambda e: e.type == "audio_interrupted")
            await run.until(lambda e: e.type == "agent_end" and len(run.raw("response.done")) == 2)
    assert run.errors() == []
    server_events.no_errors()
    first = server_events.of("response.done")[0]["response"]
    assert first["status"] == "cancelled" and first["status_details"]["reason"] == "turn_detected"
    truncated = server_events.of("conversation.item.truncated")
    assert truncated and truncated[0]["item_id"] == first["output"][0]["id"]
    assert truncated[0]["audio_end_ms"] == 2000  # what the app played
    # 2 s of the first 13-word sentence (0.3 s a word): the history keeps the words heard
    assert run.messages("assistant")[0] == "Esta é a frase número 1"


@pytest.mark.model
async def test_agents_spoken_turn_with_the_real_models(real_server, client_errors):
    host, _app = real_server
    async with await open_agent(host) as session:
        run = AgentRun(session)
        await run.speak(speech("d14_jm_kumo.wav"), pace=1.0)
        await run.until(lambda e: bool(run.raw("response.done")) and len(run.messages("assistant")) == 1
                        and all(run.messages("user")) and all(run.messages("assistant")), timeout=240)
    assert run.errors() == []
    transcript = run.raw("conversation.item.input_audio_transcription.completed")[0]["transcript"]
    assert transcript and run.messages("user") == [transcript]
    assert run.raw("response.done")[0]["response"]["status"] == "completed"
    assert run.messages("assistant")[0]  # the reply's transcript is in the agent's history
