"""What is lost or held at the edges of a reply: transcript deltas vs done, the resampler's tail, a manual commit.

Fake models over the real websocket server; no wall-clock bounds (event order and counts only).
"""

from __future__ import annotations

import re

from falante.types import SpeechChunk
from tests.conftest import fake_backends
from tests.fakes import FakeLLM, FakeTTS


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
