"""The kiosk in a real Chromium: hears a pt-BR clip (fake mic), shows the transcript, plays a reply with lip-sync."""

from __future__ import annotations

import asyncio
import time

import pytest

from .standin import StandIn

pytestmark = pytest.mark.browser


async def wait_for(page, expr: str, timeout: float = 20.0):
    """Wait for a JS condition on `falanteDebug` (guarded: the page module may not have loaded yet)."""
    body = expr.split("=>", 1)[1].strip()
    return await page.wait_for_function(f"() => !!window.falanteDebug && ({body})", timeout=timeout * 1000, polling=50)


async def sample_mouth(page, seconds: float) -> list[dict]:
    """Poll the avatar while audio plays (mouth openness from the model and the SVG mouth's real height)."""
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(await page.evaluate(
            "() => ({open: falanteDebug.mouthOpen, h: falanteDebug.mouthInnerHeight, state: falanteDebug.state,"
            " playing: !!(falanteDebug.client && falanteDebug.client.player && falanteDebug.client.player.playing)})"))
        await asyncio.sleep(0.03)
    return out


async def test_kiosk_hears_a_clip_shows_transcript_and_lip_syncs(page, screenshots):
    async with StandIn(speech_turns=1) as srv:
        await page.goto(f"{srv.base}/kiosk?token=sekret&greeting=&reset=300&voice=jf_alpha")
        await wait_for(page, "() => window.falanteDebug && falanteDebug.connected")
        # the fake microphone streams the dev clip → pcm16 24 kHz appends; the stand-in "hears" speech
        await wait_for(page, "() => falanteDebug.transcripts.length > 0", timeout=30)
        assert await page.text_content("#user-line") == srv.transcript
        update = next(e for e in srv.received if e["type"] == "session.update")
        assert update["session"]["audio"]["input"]["turn_detection"] == {"type": "server_vad"}
        assert update["session"]["audio"]["output"]["voice"] == "jf_alpha"
        assert srv.heard_samples > 24_000 and srv.heard_peak > 0.05
        # the reply plays: the mouth moves with the audio
        await wait_for(page, "() => falanteDebug.state === 'speaking'")
        samples = await sample_mouth(page, 1.2)
        await page.screenshot(path=str(screenshots / "kiosk_speaking.png"))
        playing = [s for s in samples if s["playing"]]
        assert len(playing) > 10
        opens = [s["open"] for s in playing]
        assert max(opens) > 0.3 and min(opens) < 0.2  # opens on vowels, closes on consonants
        assert len({round(o, 2) for o in opens}) >= 4
        assert max(s["h"] for s in playing) > 15  # the SVG mouth really opened (px in the 400×480 viewBox)
        # ... and rests after the audio ends
        await wait_for(page, "() => falanteDebug.state === 'idle'", timeout=15)
        await wait_for(page, "() => falanteDebug.mouthOpen < 0.01", timeout=2)
        rest = await sample_mouth(page, 0.3)
        assert max(s["open"] for s in rest) < 0.02 and max(s["h"] for s in rest) < 8
        assert "Olá" in await page.text_content("#reply-line")
        await page.screenshot(path=str(screenshots / "kiosk_rest.png"))
        assert page.errors == []


async def test_kiosk_barge_in_clears_playback_and_reports_what_was_heard(page):
    async with StandIn(speech_turns=0, barge_in_after_ms=900, pace=1.5) as srv:
        await page.goto(f"{srv.base}/kiosk?token=sekret&reset=300&greeting=Oi")
        await wait_for(page, "() => falanteDebug.connected && falanteDebug.greeted === 1")
        await wait_for(page, "() => falanteDebug.client.debug.truncates.length > 0", timeout=15)
        truncate = next(e for e in srv.received if e["type"] == "conversation.item.truncate")
        # the client stopped what it had queued and reported only what was audible (< audio sent so far)
        assert truncate["item_id"] == "item_a1" and 0 < truncate["audio_end_ms"] < 900
        assert await page.evaluate("() => falanteDebug.client.player.queued") == 0
        await wait_for(page, "() => falanteDebug.mouthOpen < 0.02", timeout=1)  # relaxes to rest at once
        assert srv.types().count("conversation.item.truncate") == 1
        assert page.errors == []


async def test_kiosk_reconnects_and_resets_for_privacy(page):
    async with StandIn(speech_turns=0) as srv:
        await page.goto(f"{srv.base}/kiosk?token=sekret&greeting=&reset=10")
        await wait_for(page, "() => falanteDebug.connected")
        assert srv.connections == 1
        # network loss: the server drops the connection → the page reconnects by itself
        for conn in list(srv._server.connections):
            await conn.close(1011, "network down")
        await wait_for(page, "() => falanteDebug.reconnects >= 1 && falanteDebug.connected")
        assert srv.connections == 2
        # inactivity → a brand-new session (privacy), without a page reload
        await wait_for(page, "() => falanteDebug.resets >= 1 && falanteDebug.connected", timeout=20)
        assert srv.connections == 3
        assert await page.get_attribute("body", "data-attract") == "on"


async def test_kiosk_refuses_a_bad_token_without_crashing(page):
    async with StandIn(speech_turns=0) as srv:
        await page.goto(f"{srv.base}/kiosk?token=wrong&greeting=")
        await wait_for(page, "() => /indisponível|reconectando/.test(document.getElementById('status-text').textContent)")
        assert srv.connections == 0


async def test_kiosk_3d_renderer_drives_the_generated_glb(page, screenshots):
    from ui.headglb import build_head_glb
    from ui import STATIC_DIR

    assert (STATIC_DIR / "head.glb").read_bytes() == build_head_glb()  # the shipped file is the generator's output
    async with StandIn(speech_turns=1) as srv:
        await page.goto(f"{srv.base}/kiosk?token=sekret&greeting=&renderer=3d&glb=/static/head.glb")
        await wait_for(page, "() => window.falanteDebug && falanteDebug.connected")
        shapes = await page.evaluate("() => falanteDebug.avatar.getState().morphTargets")
        assert {"jawOpen", "mouthFunnel", "eyeBlinkLeft", "mouthSmileLeft"} <= set(shapes)
        await wait_for(page, "() => falanteDebug.state === 'speaking'", timeout=30)
        samples = await sample_mouth(page, 1.0)
        await page.screenshot(path=str(screenshots / "kiosk_3d.png"))
        opens = [s["open"] for s in samples if s["playing"]]
        assert opens and max(opens) > 0.3 and len({round(o, 2) for o in opens}) >= 3  # swiftshader is slow
        influence = await page.evaluate(
            "() => { const m = falanteDebug.avatar.meshes.find(m => m.name === 'Mouth');"
            " return m.morphTargetInfluences[m.morphTargetDictionary.jawOpen]; }")
        assert influence >= 0
        await wait_for(page, "() => falanteDebug.state === 'idle'", timeout=15)
        await wait_for(page, "() => falanteDebug.mouthOpen < 0.01", timeout=2)
        assert page.errors == []
