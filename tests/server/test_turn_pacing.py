"""The turn's pacing on a shared CPU: the LLM is not read while the first piece of the reply is being synthesized."""

from __future__ import annotations

import asyncio

import pytest

from falante.config import Settings
from falante.types import ChatMessage
from server.turn import Turn, TurnOptions
from tests.fakes import FakeLLM, FakeTTS

REPLY = "Claro! Abrimos às nove horas e fechamos às seis da tarde, de segunda a sábado."


class CountingLLM(FakeLLM):
    def __init__(self) -> None:
        super().__init__(REPLY, delay=0.0)
        self.yielded = 0

    async def complete(self, messages, **kw):
        async for delta in super().complete(messages, **kw):
            self.yielded += 1
            yield delta


class GatedTTS(FakeTTS):
    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def synthesize(self, text, **kw):
        await self.gate.wait()
        async for chunk in super().synthesize(text, **kw):
            yield chunk


def make_turn(llm, tts, waits: bool) -> Turn:
    settings = Settings()
    settings.chat.llm_waits_for_first_audio = waits
    events: list[dict] = []

    async def emit(event: dict) -> None:
        events.append(event)

    options = TurnOptions(voice=None, speed=1.0, out_rate=24_000, audio=True, max_tokens=100, temperature=0.0)
    return Turn("resp_1", "item_1", [ChatMessage("user", "Que horas vocês abrem?")], options, llm, tts, settings, emit)


@pytest.mark.parametrize("waits", [True, False])
async def test_llm_waits_for_the_first_audio(waits: bool):
    llm, tts = CountingLLM(), GatedTTS()
    task = make_turn(llm, tts, waits).start()
    for _ in range(50):  # let the LLM run as far as it is allowed to
        await asyncio.sleep(0)
    words = len(REPLY.split())
    if waits:
        assert llm.yielded == 2, "read up to the first sentence's end (decided by the next word), then paused"
    else:
        assert llm.yielded == words
    tts.gate.set()
    await asyncio.wait_for(task, 5)
    assert llm.yielded == words  # the whole reply once the first audio is out


class SilentOnSymbols(FakeTTS):
    """Like the real TTS after normalization: a piece of emoji only gives no audio at all."""

    async def synthesize(self, text, **kw):
        if any(c.isalpha() for c in text):
            async for chunk in super().synthesize(text, **kw):
                yield chunk


async def test_a_first_sentence_with_nothing_to_say_does_not_hold_the_llm():
    llm, tts = CountingLLM(), SilentOnSymbols()
    llm.reply = "🙂! " + REPLY
    turn = make_turn(llm, tts, True)
    await asyncio.wait_for(turn.start(), 5)
    assert llm.yielded == len(llm.reply.split())
