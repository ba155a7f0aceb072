"""What is lost or held at the edges of a reply: transcript deltas vs done, the resampler's tail, a manual commit.

Fake models over the real websocket server; no wall-clock bounds (event order and counts only).
"""

from __future__ import annotations

import asyncio
import re

import numpy as np

from falante.types import SpeechChunk
from tests.conftest import fake_backends
from tests.fakes import FakeLLM, FakeRecognizer, FakeTTS


class NormalizingTTS(FakeTTS):
    """Speaks what a pt-BR normaliser would make of the text ("R$ 25" → "vinte e cinco reais"), as Kokoro does."""

    async def synthesize(self, text, *, voice=None, speed=1.0):
        spoken = re.sub(r"R\$ ?25", "vinte e cinco reais", text)
        async for chunk in super().synthesize(spoken, voice=voice, speed=speed):
            yield SpeechChunk(chunk.audio, chunk.sample_rate, chunk.phonemes, chunk.text)


async def _text_turn(c, text: str = "Quanto custa?") -> dict:
    await c.send({"type": "conversation.item.create",
                  "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})
    await c.send({"type": "response.create"})
    return await c.until("response.done")


async def test_audio_transcript_deltas_add_up_to_the_done_transcript(fake_server, client_for):
    """The transcript is the LLM's text; normalisation only feeds the TTS (deltas used to carry the spoken form)."""
    reply = "Custa R$ 25, com entrega.  Quer pagar agora?\nPosso mandar o link!"
    backends = fake_backends(llm=FakeLLM(reply), tts=NormalizingTTS())
    async with fake_server(backends) as (url, app), client_for(url) as c:
        done = await _text_turn(c)
    assert done["response"]["status"] == "completed"
    deltas = "".join(e["delta"] for e in c.of_type("response.output_audio_transcript.delta"))
    final = c.of_type("response.output_audio_transcript.done")[0]["transcript"]
    assert final == reply.strip()
    assert deltas == final


async def test_text_deltas_add_up_to_the_done_text(fake_server, client_for):
    reply = "Claro!  Abrimos às nove.\nAté logo."
    async with fake_server(fake_backends(llm=FakeLLM(reply))) as (url, app), client_for(url) as c:
        await c.send({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}})
        await c.until("session.updated")
        await _text_turn(c)
    deltas = "".join(e["delta"] for e in c.of_type("response.output_text.delta"))
    assert deltas == c.of_type("response.output_text.done")[0]["text"] == reply.strip()


class PiperRateTTS(FakeTTS):
    """A 22.05 kHz voice (Piper's rate): the reply is resampled to the client's rate. Records what it rendered."""

    sample_rate = 22_050

    def __init__(self) -> None:
        super().__init__(seconds_per_word=0.25)
        self.rendered = 0

    async def synthesize(self, text, *, voice=None, speed=1.0):
        async for chunk in super().synthesize(text, voice=voice, speed=speed):
            self.rendered += len(chunk.audio)
            yield chunk


def _audio_samples(c, bytes_per_sample: int) -> int:
    import base64
    return sum(len(base64.b64decode(e["delta"])) // bytes_per_sample for e in c.of_type("response.output_audio.delta"))


async def test_resampled_reply_keeps_its_tail_and_frames(fake_server, client_for):
    """22.05 → 24 kHz: soxr holds ~800 samples back; without a flush the reply lost them and their avatar frames."""
    tts = PiperRateTTS()
    reply = "Bom dia. Abrimos às nove horas. Fechamos às seis."
    async with fake_server(fake_backends(llm=FakeLLM(reply), tts=tts)) as (url, app), client_for(url) as c:
        await _text_turn(c)
    sent = _audio_samples(c, 2)
    expected = tts.rendered * 24_000 / 22_050
    assert abs(sent - expected) <= 3, (sent, expected)
    samples = [f["sample"] for e in c.of_type("falante.avatar.frames") for f in e["frames"]]
    assert samples == sorted(samples)
    step = 24_000 / app.state.falante.settings.avatar.fps
    gaps = [b - a for a, b in zip(samples, samples[1:])]
    assert max(gaps) <= step + 1, max(gaps)  # no frame of the reply dropped
    assert samples[-1] >= sent - step  # frames reach the end of the audio


async def test_g711_reply_keeps_its_tail(fake_server, client_for):
    """24 → 8 kHz (G.711): ~170 samples used to be lost at the end of every reply."""
    tts = PiperRateTTS()
    tts.sample_rate = 24_000
    async with fake_server(fake_backends(llm=FakeLLM("Claro, pode deixar."), tts=tts)) as (url, app), \
            client_for(url) as c:
        await c.send({"type": "session.update", "session": {"type": "realtime", "audio": {
            "output": {"format": {"type": "audio/pcmu"}}}}})
        await c.until("session.updated")
        await _text_turn(c)
    sent = _audio_samples(c, 1)
    assert abs(sent - tts.rendered / 3) <= 2, (sent, tts.rendered / 3)


# ------------------------------------------------------------------------------------------ manual commit

class GatedRecognizer(FakeRecognizer):
    """Each decode waits for `gate` (a Whisper decode that takes long); records what it was given."""

    def __init__(self) -> None:
        super().__init__(lambda seconds: "quero saber o preço")
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.lengths: list[int] = []

    async def transcribe(self, audio, *, language=None, partial=False):
        self.lengths.append(len(audio))
        self.started.set()
        await self.gate.wait()
        return await super().transcribe(audio, language=language, partial=partial)


class EndlessLLM(FakeLLM):
    """Says one word, then waits until cancelled (a reply that would never end by itself)."""

    async def complete(self, messages, *, max_tokens=256, temperature=0.7, **tools):
        self.requests.append(list(messages))
        try:
            yield "Então"
            await asyncio.Event().wait()
        except (asyncio.CancelledError, GeneratorExit):
            self.aborted += 1
            raise


def _tone(seconds: float, rate: int = 24_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


async def _manual(c) -> None:
    await c.send({"type": "session.update", "session": {"type": "realtime", "audio": {
        "input": {"turn_detection": None}}}})
    await c.until("session.updated")


async def test_cancel_overtakes_a_commit_being_transcribed(fake_server, client_for):
    """A manual commit used to await the decode inside the receive loop: the response.cancel sent after it was not
    even read until the decode ended (here: never, the decode waits for the gate), so this test hung."""
    rec = GatedRecognizer()
    llm = EndlessLLM()
    async with fake_server(fake_backends(llm=llm, recognizer=rec)) as (url, app), client_for(url) as c:
        await _manual(c)
        await c.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Oi"}]}})
        await c.send({"type": "response.create"})
        rid = (await c.until("response.created"))["response"]["id"]
        await c.append(_tone(0.5))
        await c.send({"type": "input_audio_buffer.commit"})
        await c.until("input_audio_buffer.committed")
        await c.send({"type": "response.cancel"})
        done = await c.until("response.done", timeout=10)  # hang guard only: the gate is still closed
        assert done["response"]["id"] == rid and done["response"]["status"] == "cancelled"
        assert rec.started.is_set() and not c.of_type("conversation.item.input_audio_transcription.completed")
        rec.gate.set()
        completed = await c.until("conversation.item.input_audio_transcription.completed")
        assert completed["transcript"] == "quero saber o preço"


async def test_response_create_after_commit_sees_the_transcript(fake_server, client_for):
    """The decode is off the receive loop, but a response.create sent after a commit still answers its words."""
    rec = GatedRecognizer()
    llm = FakeLLM("Custa dez reais.")
    async with fake_server(fake_backends(llm=llm, recognizer=rec)) as (url, app), client_for(url) as c:
        await _manual(c)
        await c.append(_tone(0.5))
        await c.send({"type": "input_audio_buffer.commit"})
        await c.send({"type": "response.create"})
        await c.until("input_audio_buffer.committed")
        await rec.started.wait()
        rec.gate.set()
        done = await c.until("response.done")
    assert done["response"]["status"] == "completed"
    assert llm.requests[-1][-1].content == "quero saber o preço"
    types = [e["type"] for e in c.events]
    assert types.index("conversation.item.input_audio_transcription.completed") < types.index("response.created")


async def test_commit_backlog_and_the_input_resampler_tail(fake_server, client_for):
    """Commits beyond MAX_PENDING_COMMITS get `audio_backlog` (the audio stays in the buffer); a committed buffer
    is decoded after the earlier ones."""
    from server.session import MAX_PENDING_COMMITS

    rec = GatedRecognizer()
    async with fake_server(fake_backends(recognizer=rec)) as (url, app), client_for(url) as c:
        await _manual(c)
        for _ in range(MAX_PENDING_COMMITS + 1):
            await c.append(_tone(0.3))
            await c.send({"type": "input_audio_buffer.commit"})
        error = await c.until("error")
        assert error["error"]["code"] == "audio_backlog"
        assert len(c.of_type("input_audio_buffer.committed")) == MAX_PENDING_COMMITS
        rec.gate.set()
        for _ in range(MAX_PENDING_COMMITS):
            await c.until("conversation.item.input_audio_transcription.completed")
        await c.send({"type": "input_audio_buffer.commit"})  # the refused audio was kept: it commits now
        await c.until("conversation.item.input_audio_transcription.completed")


async def test_commit_holds_every_input_sample(fake_server, client_for):
    """The 24 → 16 kHz input resampler's tail (its filter delay) used to be lost at each commit."""
    rec = GatedRecognizer()
    rec.gate.set()
    async with fake_server(fake_backends(recognizer=rec)) as (url, app), client_for(url) as c:
        await _manual(c)
        for _ in range(2):
            await c.append(_tone(0.3))
            await c.send({"type": "input_audio_buffer.commit"})
            await c.until("conversation.item.input_audio_transcription.completed")
    assert rec.lengths == [int(0.3 * 16_000)] * 2
