"""Spoken Portuguese in, spoken Portuguese out, with the real offline models and the official `openai` SDK."""


import jiwer
import numpy as np
import pytest

from asr.wer import normalize as normalize_pt
from llm.language import score_language
from tests.conftest import dev_clip, dev_manifest
from tests.sdk_client import speak_and_listen

pytestmark = pytest.mark.model
RATE = 24_000


async def test_spoken_question_gets_spoken_portuguese_answer(real_server):
    host, _ = real_server
    # a clip every decode variant gets right (WER 0 for int8/int8_float32/float32; the 4-word d09 scored 0.25-0.5:
    # one word decided the gate), so this tests the loop, not one CPU's kernels (scripts/bench_gates.py)
    clip = next(m for m in dev_manifest() if m["file"] == "d14_jm_kumo.wav")
    audio = np.concatenate([dev_clip(clip["file"]), np.zeros(RATE // 2, np.float32)])
    conv = await speak_and_listen(host, audio, pace=1.0)
    kinds = [e["type"] for e in conv.events]
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.speech_stopped")
    transcript = conv.of("conversation.item.input_audio_transcription.completed")[0]["transcript"]
    wer = jiwer.wer(normalize_pt(clip["text_spoken"]), normalize_pt(transcript))
    assert wer < 0.35, (transcript, wer)
    done = conv.of("response.done")[0]
    assert done["response"]["status"] == "completed", done
    reply = conv.of("response.output_audio_transcript.done")[0]["transcript"]
    assert score_language(reply).language == "pt", reply
    audio_s = len(conv.audio()) / 2 / RATE
    assert audio_s >= 1.0, audio_s
    frames = [f for e in conv.of("falante.avatar.frames") for f in e["frames"]]
    assert frames[0]["sample"] <= RATE // 10 and frames[-1]["sample"] >= len(conv.audio()) / 2 - RATE // 10
    assert max(max(f["visemes"][1:]) for f in frames) > 0.3  # the mouth really moves
