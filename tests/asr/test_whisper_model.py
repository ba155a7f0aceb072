"""The real bundled Whisper base (int8, CPU): one load, input robustness, long audio, cancel safety, batching."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from asr.wer import corpus_wer
from tests.asr.helpers import SR, clip, concat, manifest, silence

pytestmark = pytest.mark.model

BY_FILE = {m["file"]: m for m in manifest()}
# Per-clip gates check that the model works (loads once, copes with clipping, long audio, cancels, batches), not its
# accuracy (that gate is test_quality_gates.py). Each clip here decodes at WER 0.0 under int8, int8_float32 and float32
# (over a minute: 0.041-0.068); each gate leaves at least one word of ~6 (scripts/bench_gates.py, 2026-12-03).


async def test_loads_once_and_transcribes_a_clip(whisper):
    whisper.load()  # a second call is a no-op
    assert whisper.load_count == 1
    text = await whisper.transcribe(clip("d14_jm_kumo.wav"))
    assert corpus_wer([BY_FILE["d14_jm_kumo.wav"]["text_spoken"]], [text]) <= 0.2, text


async def test_bad_and_empty_input(whisper, monkeypatch):
    decodes = []
    monkeypatch.setattr(whisper, "_decode", lambda *args: decodes.append(args) or "x")
    with pytest.raises(ValueError, match="NaN"):
        await whisper.transcribe(np.full(SR, np.nan, dtype=np.float32))
    assert await whisper.transcribe(np.zeros(0, dtype=np.float32)) == ""
    assert await whisper.transcribe(np.zeros(SR * 2, dtype=np.float32)) == ""
    assert decodes == [], "silence and empty audio never reach the model"


async def test_dc_offset_and_clipping_still_recognised(whisper):
    audio = np.clip(clip("d16_jm_kumo.wav") * 4.0, -1.0, 1.0) + 0.2  # 12 dB into clipping, plus a DC offset
    text = await whisper.transcribe(audio)
    assert corpus_wer([BY_FILE["d16_jm_kumo.wav"]["text_spoken"]], [text]) <= 0.3, text


async def test_more_than_a_minute_of_speech(whisper):
    names = ["d27_jf_alpha.wav", "d28_jm_kumo.wav", "d29_jf_alpha.wav", "d30_jm_kumo.wav",
             "d12_jm_kumo.wav", "d19_jf_alpha.wav", "d20_jm_kumo.wav", "d23_jf_alpha.wav"]
    audio = concat([concat([clip(n), silence(0.5)]) for n in names])
    assert len(audio) > 60 * SR
    text = await whisper.transcribe(audio)
    reference = " ".join(BY_FILE[n]["text_spoken"] for n in names)
    assert corpus_wer([reference], [text]) <= 0.2, text


async def test_cancelled_decode_does_not_poison_the_shared_model(whisper):
    first = asyncio.ensure_future(whisper.transcribe(clip("d27_jf_alpha.wav")))
    while whisper._executor.pending:  # wait until a worker has taken it
        await asyncio.sleep(0.005)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    text = await whisper.transcribe(clip("d08_jm_kumo.wav"))
    assert corpus_wer([BY_FILE["d08_jm_kumo.wav"]["text_spoken"]], [text]) <= 0.25, text


async def test_batched_finals_decode_like_single_ones(whisper):
    names = ["d14_jm_kumo.wav", "d16_jm_kumo.wav", "d26_jm_kumo.wav"]
    texts = await asyncio.to_thread(whisper.decode_batch, [clip(n) for n in names], ["pt"] * 3)
    assert corpus_wer([BY_FILE[n]["text_spoken"] for n in names], texts) <= 0.15, texts
