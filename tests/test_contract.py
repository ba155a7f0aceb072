"""One contract suite for every backend, fake and real, so the fakes used by fast tests cannot drift.

The real backends are the ones the embedded-default server loaded (tests/conftest.py: `real_server`), so this
suite costs no extra model load.
"""

import asyncio

import numpy as np
import pytest

from falante.config import VadSettings
from falante.types import (
    ASR_SAMPLE_RATE,
    ChatMessage,
    LanguageModel,
    SpeechChunk,
    SpeechRecognizer,
    SpeechStarted,
    SpeechStopped,
    SpeechSynthesizer,
    Transcript,
)
from tests.conftest import dev_clip, dev_manifest, fake_backends

REAL = pytest.param("real", marks=pytest.mark.model)


@pytest.fixture
async def started_fakes():
    fakes = fake_backends()
    await fakes.start()
    return fakes


@pytest.fixture(params=["fake", REAL])
def backends(request):
    if request.param == "fake":
        return request.getfixturevalue("started_fakes")
    _, app = request.getfixturevalue("real_server")
    return app.state.falante.backends


async def test_recognizer_contract(backends):
    rec = backends.recognizer
    assert isinstance(rec, SpeechRecognizer)
    clip = dev_clip("d05_jf_alpha.wav", ASR_SAMPLE_RATE)
    text = await rec.transcribe(clip, language="pt")
    assert isinstance(text, str) and text.strip()
    assert await rec.transcribe(np.zeros(0, np.float32)) == ""
    with pytest.raises(ValueError, match="(?i)nan|finite"):
        await rec.transcribe(np.full(16000, np.nan, np.float32))
    task = asyncio.create_task(rec.transcribe(clip))  # a cancelled call must not poison the shared model
    await asyncio.sleep(0)
    task.cancel()
    assert (await rec.transcribe(clip, language="pt")).strip()


async def test_listener_contract(backends):
    clip_info = next(m for m in dev_manifest() if m["file"] == "d05_jf_alpha.wav")
    audio = np.concatenate([dev_clip(clip_info["file"], ASR_SAMPLE_RATE), np.zeros(8000, np.float32)])
    listener = backends.make_listener(VadSettings(), "pt", None)  # server_vad: no end-of-turn policy

    async def chunks():
        for i in range(0, len(audio), 1600):
            yield audio[i:i + 1600]

    events = [ev async for ev in listener.events(chunks())]
    kinds = [type(ev) for ev in events]
    assert kinds.index(SpeechStarted) < kinds.index(SpeechStopped) < max(
        i for i, ev in enumerate(events) if isinstance(ev, Transcript) and ev.final)
    started = next(ev for ev in events if isinstance(ev, SpeechStarted))
    stopped = next(ev for ev in events if isinstance(ev, SpeechStopped))
    assert abs(started.sample / ASR_SAMPLE_RATE - clip_info["speech_start_s"]) < 0.2
    assert abs(stopped.sample / ASR_SAMPLE_RATE - clip_info["speech_end_s"]) < 0.3
    final = next(ev for ev in events if isinstance(ev, Transcript) and ev.final)
    assert final.text.strip()


async def test_llm_contract(backends):
    llm = backends.llm
    assert isinstance(llm, LanguageModel)
    messages = [ChatMessage("system", "Responda em português, numa frase."), ChatMessage("user", "Oi, tudo bem?")]
    deltas = [d async for d in llm.complete(messages, max_tokens=16, temperature=0.0)]
    assert deltas and all(isinstance(d, str) for d in deltas) and "".join(deltas).strip()
    stream = llm.complete(messages, max_tokens=200, temperature=0.0)
    first = await anext(stream)
    assert isinstance(first, str)
    await stream.aclose()  # cancelling mid-generation aborts it in the engine


async def test_tts_contract(backends):
    tts = backends.tts
    assert isinstance(tts, SpeechSynthesizer)
    voices = tts.voices()
    assert voices
    chunks = [c async for c in tts.synthesize("Olá, tudo bem? Eu sou a Falante.", voice=voices[-1])]
    assert chunks
    for chunk in chunks:
        assert isinstance(chunk, SpeechChunk) and chunk.sample_rate == tts.sample_rate
        assert chunk.audio.dtype == np.float32 and chunk.audio.ndim == 1 and len(chunk.audio) > 0
        assert np.all(np.isfinite(chunk.audio)) and np.abs(chunk.audio).max() <= 1.0
        assert chunk.phonemes and chunk.text
        starts = [p.start_sample for p in chunk.phonemes]
        assert starts == sorted(starts)
        assert all(0 <= p.start_sample <= p.end_sample <= len(chunk.audio) for p in chunk.phonemes)
    assert sum(len(c.audio) for c in chunks) / tts.sample_rate > 1.0
    stream = tts.synthesize("Uma frase. Outra frase. Mais uma frase para cancelar.")
    await anext(stream)
    await stream.aclose()


async def test_end_of_turn_contract(backends):
    from falante.types import EndOfTurnDetector

    detector = backends.end_of_turn
    assert isinstance(detector, EndOfTurnDetector)
    unfinished = await detector.end_probability("Eu queria saber se vocês")
    finished = await detector.end_probability("Vocês abrem no domingo?")
    assert 0.0 <= unfinished < 0.1 and 0.5 < finished <= 1.0, (unfinished, finished)
    assert await detector.end_probability("") == 0.0
    task = asyncio.create_task(detector.end_probability("Eu gostaria de"))  # cancelled: the next call still works
    await asyncio.sleep(0)
    task.cancel()
    assert abs(await detector.end_probability("Vocês abrem no domingo?") - finished) < 1e-3


def _fresh(backend):
    """An unloaded instance of the same class (cheap: nothing is loaded), so closing it leaves the shared one alone."""
    settings = getattr(backend, "settings", None)
    return type(backend)(settings) if settings is not None else type(backend)()


async def test_close_contract(backends):
    """Every model backend has a blocking `close()` (server shutdown), safe on an unloaded instance and twice; a
    closed recognizer or synthesizer refuses work with a RuntimeError instead of hanging on a dead worker pool."""
    rec, tts = _fresh(backends.recognizer), _fresh(backends.tts)
    for backend in (rec, tts):
        backend.close()
        backend.close()
    with pytest.raises(RuntimeError):
        await rec.transcribe(dev_clip("d05_jf_alpha.wav", ASR_SAMPLE_RATE), language="pt")
    with pytest.raises(RuntimeError):
        async for _ in tts.synthesize("Olá."):
            pass


async def test_backends_close_closes_every_model():
    """Backends.close used to close only the LLM: the ASR and TTS worker threads outlived the server."""
    fakes = fake_backends()
    await fakes.start()
    await fakes.close()
    assert fakes.recognizer.closed and fakes.tts.closed


async def test_llm_tool_contract(backends):
    """tool_choice as the protocol defines it: a named tool is called with arguments valid for its schema (a ToolCall
    after any text), "none" never calls; the fake's scripted calls obey the same rules."""
    from falante.types import ToolCall, ToolSpec
    from llm.tools import validation_error

    llm = backends.llm
    tools = [ToolSpec("consultar_horario", "Horário de funcionamento de um local.",
                      {"type": "object", "properties": {"local": {"type": "string"}}, "required": ["local"]})]
    messages = [ChatMessage("system", "Você atende num museu."), ChatMessage("user", "Que horas o museu abre?")]
    named = [x async for x in llm.complete(messages, max_tokens=48, temperature=0.0, tools=tools,
                                           tool_choice="consultar_horario")]
    calls = [x for x in named if isinstance(x, ToolCall)]
    assert len(calls) == 1 and validation_error(calls[0], tools) is None, named
    assert calls[0].call_id and not any(isinstance(x, str) for x in named)
    none = [x async for x in llm.complete(messages, max_tokens=16, temperature=0.0, tools=tools, tool_choice="none")]
    assert none and all(isinstance(x, str) for x in none)
