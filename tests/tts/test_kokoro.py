"""Kokoro with the real weights: round-trip intelligibility, streaming, cancellation, timings, shared load."""

import asyncio
import json

import numpy as np
import pytest

from falante.config import KokoroSettings
from falante.types import SpeechSynthesizer
from tests.conftest import DEV_DIR as DEV
from tts.kokoro import KokoroError, KokoroSynthesizer
from tts.timing import SIL, speech_bounds

# The most intelligible of the bundled (Japanese) voices for pt-BR: round-trip WER 0.07 vs 0.19 for jf_alpha.
ROUND_TRIP_VOICE = "jm_kumo"
pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def tts():
    synth = KokoroSynthesizer(KokoroSettings())
    synth.load()
    yield synth
    synth.close()


@pytest.fixture(scope="module")
def whisper():
    from faster_whisper import WhisperModel

    from asr.resolve import resolve_model

    return WhisperModel(resolve_model("bundled:whisper-base"), device="cpu", compute_type="int8", cpu_threads=2)


def dev_sentences():
    rows, seen = [], set()
    for line in (DEV / "manifest.jsonl").read_text().splitlines():
        item = json.loads(line)
        if "turns" not in item and item["text"] not in seen and item["voice"].startswith(("jf_", "jm_")):
            seen.add(item["text"])
            rows.append((item["text"], item["text_spoken"], item["voice"]))
    return rows


async def collect(tts, text, **kw):
    return [chunk async for chunk in tts.synthesize(text, **kw)]


def test_protocol_and_voices(tts):
    assert isinstance(tts, SpeechSynthesizer)
    assert {"jf_alpha", "jm_kumo"} <= set(tts.voices())
    assert tts.has_durations  # the duration tensor was exposed


@pytest.mark.skipif(not DEV.is_dir(), reason="dev set not available")
@pytest.mark.parametrize("graph_optimization", ["all", "none"])
async def test_round_trip_wer_on_dev_set(tts, whisper, graph_optimization):
    """Kokoro speaks the written `text` (numbers, R$, 14h30…) → Whisper base → WER vs `text_spoken`.

    Run with onnxruntime's fused graph ("all", what each CPU optimizes its own way) and without ("none"). Spread
    (scripts/bench_gates.py, 2 cores, 2026-12-03): 0.079 with each; the gate keeps 5 words of margin.
    """
    from asr.wer import corpus_wer
    from falante.audio import resample

    synth = tts
    if graph_optimization != tts.settings.graph_optimization:
        synth = KokoroSynthesizer(KokoroSettings(graph_optimization=graph_optimization))
        synth.load()
    rows = dev_sentences()
    assert len(rows) >= 25
    hyps = []
    for text, _, _ in rows:
        audio = np.concatenate([c.audio for c in await collect(synth, text, voice=ROUND_TRIP_VOICE)])
        segments, _ = await asyncio.to_thread(
            whisper.transcribe, resample(audio, 24_000, 16_000), language="pt", beam_size=5,
            condition_on_previous_text=False, temperature=0.0)  # no sampled fallback: deterministic
        hyps.append(await asyncio.to_thread(lambda s=segments: " ".join(x.text.strip() for x in s)))
    if synth is not tts:
        synth.close()
    wer = corpus_wer([spoken for _, spoken, _ in rows], hyps)
    print(f"Kokoro→Whisper round-trip WER {wer:.3f} (graph optimization {graph_optimization})")
    assert wer <= 0.10


async def test_streams_one_chunk_per_sentence_with_text(tts):
    chunks = await collect(tts, "Oi, bom dia! O combo sai por R$ 25,90.")
    assert [c.text for c in chunks] == ["Oi, bom dia!", "O combo sai por vinte e cinco reais e noventa centavos."]
    assert all(c.sample_rate == 24_000 and c.audio.dtype == np.float32 for c in chunks)


async def test_first_chunk_arrives_before_the_last_is_synthesized(tts):
    stream = tts.synthesize("Primeira frase curta. Segunda frase. Terceira frase aqui.")
    before = tts.rendered_pieces
    await anext(stream)
    assert tts.rendered_pieces - before == 1
    rest = [c async for c in stream]
    assert len(rest) == 2 and tts.rendered_pieces - before == 3


async def test_cancellation_stops_synthesis(tts):
    text = " ".join(f"Esta é a frase número {i}." for i in range(1, 9))
    before = tts.rendered_pieces

    async def consume_two():
        got = 0
        async for _ in tts.synthesize(text):
            got += 1
            if got == 2:
                raise asyncio.CancelledError  # what a barge-in does to the reply task

    with pytest.raises(asyncio.CancelledError):
        await consume_two()
    await asyncio.to_thread(tts._executor.submit(lambda: None).result, 30)  # drain anything in flight
    assert tts.rendered_pieces - before == 2


async def test_phoneme_timings_cover_audio_monotonically_and_match_speech(tts):
    for chunk in await collect(tts, "Minha reserva é às 14h30. Você pode me dizer se tem voo direto?"):
        t = chunk.phonemes
        assert t[0].start_sample == 0 and t[-1].end_sample == len(chunk.audio)
        assert all(a.end_sample == b.start_sample and a.start_sample < a.end_sample for a, b in zip(t, t[1:]))
        voiced = [p for p in t if p.phoneme != SIL]
        assert len(voiced) > 10
        start, end = speech_bounds(chunk.audio, 24_000)
        assert abs(voiced[0].start_sample - start) < 0.25 * 24_000  # speech starts where the first phoneme does
        assert abs(voiced[-1].end_sample - end) < 0.25 * 24_000


async def test_long_sentence_is_split_under_the_token_limit(tts):
    settings = tts.settings.model_copy(update={"max_tokens": 60})
    small = KokoroSynthesizer(settings)
    small._session, small._vocab, small._voices = tts._session, tts._vocab, tts._voices  # reuse the loaded model
    pieces = small._plan("Eu estou vindo de Belo Horizonte e queria saber qual é a melhor forma de chegar ao "
                         "centro de São Paulo, sem pegar trânsito, antes das seis.")
    assert len(pieces) >= 3 and all(len(p.ids) <= 60 for p in pieces)


async def test_concurrent_sessions_share_one_model(tts):
    loads = tts.loads
    texts = ["Olá, tudo bem?", "Que horas a loja abre?", "Obrigado.", "Até amanhã!"]
    voices = ["jf_alpha", "jm_kumo", "jf_nezumi", "jm_kumo"]
    results = await asyncio.gather(*(collect(tts, t, voice=v) for t, v in zip(texts, voices)))
    assert tts.loads == loads == 1
    assert [r[0].text for r in results] == texts
    assert all(len(r[0].audio) > 12_000 for r in results)


async def test_voice_changes_the_audio(tts):
    a = (await collect(tts, "Bom dia.", voice="jf_alpha"))[0].audio
    b = (await collect(tts, "Bom dia.", voice="jm_kumo"))[0].audio
    assert len(a) != len(b) or not np.allclose(a, b)


def test_voices_file_with_portuguese_names(tmp_path, tts):
    table = tts._voices["jf_alpha"].reshape(-1, 1, 256)
    path = tmp_path / "voices-v1.0.bin"
    with open(path, "wb") as fh:
        np.savez(fh, pf_dora=table, pm_alex=table)
    synth = KokoroSynthesizer(KokoroSettings(voices_file=str(path), voice="pf_dora"))
    synth.load()
    assert synth.voices() == ["pf_dora", "pm_alex"]


def test_bad_configuration_errors_name_the_fix(tmp_path):
    with pytest.raises(KokoroError, match="not an existing .onnx"):
        KokoroSynthesizer(KokoroSettings(model=str(tmp_path / "missing.onnx"))).load()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(KokoroError, match="cannot load"):
        KokoroSynthesizer(KokoroSettings(model=str(bad), model_durations=False)).load()
    with pytest.raises(KokoroError, match="not in the voices file"):
        KokoroSynthesizer(KokoroSettings(voice="pf_nobody")).load()
