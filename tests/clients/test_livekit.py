"""LiveKit Agents' openai plugin (`realtime.RealtimeModel`) talks to falante unchanged, without a LiveKit server.

The RealtimeSession is driven as LiveKit's AgentSession drives it: `generate_reply()`, `push_audio()` of
microphone frames, and `truncate()` with the audio played when the user interrupts. Its default voice ("marin") and
session settings are kept.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from falante.audio import float_to_pcm16_bytes
from tests.clients.conftest import LONG_REPLY, RATE, speech
from tests.conftest import fake_backends
from tests.fakes import FakeLLM, FakeTTS

pytest.importorskip("livekit.plugins.openai")


class LiveKit:
    def __init__(self, host: str) -> None:
        from livekit.plugins.openai import realtime

        self.model = realtime.RealtimeModel(base_url=f"http://{host}/v1", api_key="local")
        self.session = self.model.session()
        self.errors: list[Any] = []
        self.transcripts: list[str] = []
        self.generations: asyncio.Queue[Any] = asyncio.Queue()
        self.session.on("error", self.errors.append)
        self.session.on("input_audio_transcription_completed",
                        lambda ev: ev.is_final and self.transcripts.append(ev.transcript))
        self.session.on("generation_created", lambda ev: ev.user_initiated or self.generations.put_nowait(ev))

    async def close(self) -> None:
        await self.session.aclose()
        await self.model.aclose()

    async def speak(self, audio, pace: float = 0.0) -> None:
        """Push 100 ms microphone frames; `pace` 1.0 = at real time (the real models' test)."""
        from livekit import rtc
        pcm = float_to_pcm16_bytes(audio)
        step = RATE // 10 * 2
        for i in range(0, len(pcm), step):
            chunk = pcm[i:i + step]
            self.session.push_audio(rtc.AudioFrame(data=chunk, sample_rate=RATE, num_channels=1,
                                                   samples_per_channel=len(chunk) // 2))
            await asyncio.sleep(0.1 * pace)

    def history(self, role: str) -> list[str]:
        return [" ".join(str(c) for c in item.content).strip() for item in self.session.chat_ctx.items
                if getattr(item, "role", None) == role]


async def played(generation: Any) -> tuple[str, int]:
    """Consume a generation as LiveKit's audio output would: its text and the number of audio samples."""
    text, samples = [], 0
    async def read_text(message: Any) -> None:
        async for delta in message.text_stream:
            text.append(delta)

    async def read_audio(message: Any) -> None:
        nonlocal samples
        async for frame in message.audio_stream:
            samples += frame.samples_per_channel

    async for message in generation.message_stream:
        await asyncio.gather(read_text(message), read_audio(message))
    return "".join(text).strip(), samples


async def test_livekit_generate_reply_and_spoken_turn_with_its_default_voice(fake_server, client_errors,
                                                                             server_events):
    async with fake_server(fake_backends(llm=FakeLLM("Bom dia! Posso ajudar?"))) as (url, _app):
        lk = LiveKit(url.split("/")[2])
        try:
            generation = await asyncio.wait_for(lk.session.generate_reply(instructions="Cumprimente."), 15)
            assert generation.user_initiated  # matched by response.metadata.client_event_id
            text, samples = await asyncio.wait_for(played(generation), 30)
            await lk.speak(speech())
            spoken = await asyncio.wait_for(lk.generations.get(), 30)
            await asyncio.wait_for(played(spoken), 30)
        finally:
            await lk.close()
    assert lk.errors == []
    server_events.no_errors()
    assert text == "Bom dia! Posso ajudar?" and samples > RATE
    updated = server_events.of("session.updated")[-1]["session"]
    assert updated["audio"]["output"]["voice"] == "marin"  # the plugin's default voice, kept
    transcript = server_events.of("conversation.item.input_audio_transcription.completed")[0]["transcript"]
    assert lk.transcripts == [transcript]
    assert lk.history("user") == [transcript]  # the spoken turn is in the plugin's chat context
    assert lk.history("assistant") == ["Bom dia! Posso ajudar?"] * 2


async def test_livekit_barge_in_truncates(fake_server, client_errors, server_events):
    replies = iter([LONG_REPLY, "Certo."])
    backends = fake_backends(llm=FakeLLM(lambda messages: next(replies), delay=0.03), tts=FakeTTS(rtf=0.3))
    async with fake_server(backends) as (url, _app):
        lk = LiveKit(url.split("/")[2])
        try:
            generation = await asyncio.wait_for(lk.session.generate_reply(), 15)
            reading = asyncio.create_task(played(generation))
            while not server_events.of("response.output_audio.delta"):
                await asyncio.sleep(0.02)
            await lk.speak(speech())  # the user talks over the reply; AgentSession then truncates what was played
            await asyncio.wait_for(reading, 30)
            item_id = server_events.of("response.output_item.added")[0]["item"]["id"]
            lk.session.truncate(message_id=item_id, modalities=["audio", "text"], audio_end_ms=500)
            await asyncio.wait_for(lk.generations.get(), 30)
            while not server_events.of("conversation.item.truncated"):
                await asyncio.sleep(0.02)
        finally:
            await lk.close()
    assert lk.errors == []
    server_events.no_errors()
    assert server_events.of("response.done")[0]["response"]["status"] == "cancelled"
    assert server_events.of("conversation.item.truncated")[0]["item_id"] == item_id


@pytest.mark.model
async def test_livekit_spoken_turn_with_the_real_models(real_server, client_errors):
    host, _app = real_server
    lk = LiveKit(host)
    try:
        generation = await asyncio.wait_for(lk.session.generate_reply(instructions="Diga olá."), 60)
        greeting, _ = await asyncio.wait_for(played(generation), 240)
        await lk.speak(speech("d14_jm_kumo.wav"), pace=1.0)
        answer, samples = await asyncio.wait_for(played(await asyncio.wait_for(lk.generations.get(), 240)), 240)
    finally:
        await lk.close()
    assert lk.errors == []
    assert greeting and answer and samples > 0
    assert len(lk.transcripts) == 1 and lk.history("user") == lk.transcripts  # in the plugin's chat context
