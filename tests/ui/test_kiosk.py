"""The kiosk in a real Chromium against the real server app (real websocket, real pages, fake models): it hears
the fake-mic clip, shows the transcript, plays the reply with lip-sync, handles barge-in, reconnects, resets for
privacy and survives a bad token."""

from __future__ import annotations

import pytest

from tests.conftest import fake_backends
from tests.fakes import FakeLLM, FakeRecognizer, FakeTTS

from .pages import assert_lip_sync, assert_rest, metric, now_ms, received, sent, wait_for, wait_frames

pytestmark = pytest.mark.browser
HEARD = "quero saber o horário de funcionamento."  # what the FakeRecognizer "hears"
REPLY = "Claro! Abrimos às nove horas, de terça a domingo."


async def test_kiosk_hears_a_clip_shows_transcript_and_lip_syncs(ui_server, browser_page, screenshots):
    backends = fake_backends(llm=FakeLLM(REPLY), recognizer=FakeRecognizer(lambda seconds: HEARD))
    async with ui_server(backends, server__auth_token="sekret") as (base, app), browser_page("once") as page:
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        await page.goto(f"{base}/kiosk?token=sekret&greeting=&reset=300&voice=fake_b")
        await wait_for(page, "falanteDebug.connected")
        # the token goes in OpenAI's browser subprotocol, never in the websocket URL (access logs print URLs)
        assert sockets and not any("sekret" in url for url in sockets), sockets
        # the fake microphone streams the dev clip as pcm16 24 kHz appends; the server's listener hears a turn
        await wait_for(page, "falanteDebug.transcripts.length > 0", timeout=30)
        assert await page.text_content("#user-line") == HEARD
        update = (await sent(page, "session.update"))[0]
        assert update["session"]["audio"]["input"]["turn_detection"] == {"type": "semantic_vad", "eagerness": "auto"}
        updated = (await received(page, "session.updated"))[0]
        assert updated["session"]["audio"]["output"]["voice"] == "fake_b"
        assert await received(page, "error") == []
        assert metric(app, "falante_audio_in_seconds_total") > 2.0  # the whole clip reached the server
        # the reply plays: the mouth moves with the audio ...
        await wait_for(page, "falanteDebug.state === 'speaking'")
        start = await now_ms(page)
        await wait_for(page, "falanteDebug.mouthOpen > 0.3")
        await page.screenshot(path=str(screenshots / "kiosk_speaking.png"))
        # ... and rests after the audio ends
        await wait_for(page, "falanteDebug.state === 'idle'", timeout=60)
        await wait_for(page, "falanteDebug.mouthOpen < 0.01", timeout=15)
        idle = await now_ms(page)
        assert_lip_sync([s for s in await wait_frames(page, start) if s["t"] < idle])
        assert_rest(await wait_frames(page, idle, count=15))
        assert await page.text_content("#reply-line") == REPLY
        done = await received(page, "response.done")
        assert [d["response"]["status"] for d in done] == ["completed"]
        await page.screenshot(path=str(screenshots / "kiosk_rest.png"))
        assert page.errors == []


@pytest.mark.parametrize("vad", ["server", "semantic"])
async def test_kiosk_barge_in_clears_playback_and_reports_what_was_heard(ui_server, browser_page, vad):
    """The clip repeats while the (long) reply plays: the page silences at speech_started and truncates.
    TTS at 0.9× real time: the server is still speaking when the visitor talks again, so it cancels too. Both turn
    detections: the fixed-silence one (?vad=server) and the page's default, semantic_vad."""
    long_reply = " ".join(["O museu abre às nove e fecha às cinco."] * 4)  # 4 × 2.7 s of audio
    # The visitor's phrase is a finished one, as Whisper hears the clip ("Boa noite, você pode me ajudar?"). Heard
    # unfinished (no final mark), semantic_vad rightly waits its 2 s cap, the clip repeats 0.5 s later, before the
    # first 2.7 s sentence is synthesized (2.4 s at 0.9x): the barge-in cancels a reply nobody heard, so there is
    # nothing to truncate (the page reports only what played).
    backends = fake_backends(llm=FakeLLM(long_reply), tts=FakeTTS(rtf=0.9), recognizer=FakeRecognizer(lambda s: HEARD))
    async with ui_server(backends) as (base, _), browser_page("loop") as page:
        await page.goto(f"{base}/kiosk?greeting=&reset=300" + ("&vad=server" if vad == "server" else ""))
        await wait_for(page, "falanteDebug.connected")
        await wait_for(page, "falanteDebug.client.debug.truncates.length > 0", timeout=40)
        first = (await received(page, "response.created"))[0]["response"]["id"]
        truncate = (await sent(page, "conversation.item.truncate"))[0]
        # the playback queue was cleared at once: nothing of the interrupted reply is still scheduled
        assert await page.evaluate("(rid) => falanteDebug.client.player.responseId !== rid"
                                   " && falanteDebug.client.cancelled.has(rid)", first)
        await wait_for(page, "falanteDebug.mouthOpen < 0.02", timeout=15)  # relaxes to rest (bound only against a hang)
        events = await received(page)
        barge = next(e for e in events if e["type"] == "input_audio_buffer.speech_started"
                     and e["_t"] > next(a["_t"] for a in events if a.get("response_id") == first
                                        and a["type"] == "response.output_audio.delta"))
        assert 0 <= truncate["_t"] - barge["_t"] < 100  # the same handler: speech_started → stop → truncate
        audio_ms = sum(e["delta"] * 3 // 4 // 2 for e in events  # base64 length → pcm16 samples
                       if e["type"] == "response.output_audio.delta" and e["response_id"] == first
                       and e["_t"] < truncate["_t"]) * 1000 // 24_000
        item = next(e["item_id"] for e in events if e.get("response_id") == first
                    and e["type"] == "response.output_audio.delta")
        # only what was audible is reported: less than the audio the page had received
        assert truncate["item_id"] == item and 0 < truncate["audio_end_ms"] < audio_ms
        # the server cancelled the reply and confirmed the truncation
        await page.wait_for_function(
            "(rid) => __ws.recv.some((e) => e.type === 'response.done' && e.response.id === rid)", arg=first,
            timeout=60_000)
        await page.wait_for_function("() => __ws.recv.some((e) => e.type === 'conversation.item.truncated')",
                                     timeout=60_000)
        done = next(e for e in await received(page, "response.done") if e["response"]["id"] == first)
        assert done["response"]["status"] == "cancelled"
        truncated = (await received(page, "conversation.item.truncated"))[0]
        assert truncated["item_id"] == item and truncated["audio_end_ms"] <= truncate["audio_end_ms"]
        assert len(await sent(page, "conversation.item.truncate")) >= 1
        assert await received(page, "error") == []
        assert page.errors == []


async def test_kiosk_reconnects_and_resets_for_privacy(ui_server, browser_page):
    async with ui_server(limits__idle_timeout_s=3.0) as (base, _), browser_page("silence") as page:
        # a voice this server lacks falls back to its default instead of failing the session.update
        await page.goto(f"{base}/kiosk?greeting=&reset=10&voice=pf_dora")
        await wait_for(page, "falanteDebug.connected && !!falanteDebug.client.mic")
        # the server drops a silent session (idle timeout) → the page reconnects by itself, mic and all
        await page.evaluate("() => falanteDebug.client.stopMic()")
        await wait_for(page, "falanteDebug.reconnects >= 1 && falanteDebug.connected", timeout=60)
        errors = await received(page, "error")
        assert [e["error"]["code"] for e in errors] == ["idle_timeout"]
        assert all("voice" not in u["session"]["audio"]["output"] for u in await sent(page, "session.update"))
        await wait_for(page, "!!falanteDebug.client.mic")
        # inactivity → a brand-new session (privacy), without a page reload
        await wait_for(page, "falanteDebug.resets >= 1 && falanteDebug.connected", timeout=30)
        assert await page.get_attribute("body", "data-attract") == "on"
        sessions = [e["session"]["id"] for e in await received(page, "session.created")]
        assert len(sessions) == 3 and len(set(sessions)) == 3
        assert await page.evaluate("() => __ws.opened") == 3
        assert page.errors == []


async def test_kiosk_refuses_a_bad_token_without_crashing(ui_server, browser_page):
    async with ui_server(server__auth_token="sekret") as (base, app), browser_page("silence") as page:
        await page.goto(f"{base}/kiosk?token=wrong&greeting=")
        await wait_for(page, "/indisponível|reconectando/.test(document.getElementById('status-text').textContent)")
        await page.wait_for_function("() => __ws.closes.length > 0", timeout=60_000)
        assert (await received(page, "error"))[0]["error"]["code"] == "unauthorized"
        assert metric(app, "falante_sessions_refused_total", reason="auth") >= 1
        assert app.state.falante.admission.active == 0
        assert page.errors == []


async def test_kiosk_3d_renderer_drives_the_generated_glb(ui_server, browser_page, screenshots):
    from ui import STATIC_DIR
    from ui.headglb import build_head_glb

    assert (STATIC_DIR / "head.glb").read_bytes() == build_head_glb()  # the shipped file is the generator's output
    async with ui_server() as (base, _), browser_page("once") as page:
        await page.goto(f"{base}/kiosk?greeting=&renderer=3d&glb=/static/head.glb")
        await wait_for(page, "falanteDebug.connected", timeout=30)
        shapes = await page.evaluate("() => falanteDebug.avatar.getState().morphTargets")
        assert {"jawOpen", "mouthFunnel", "eyeBlinkLeft", "mouthSmileLeft"} <= set(shapes)
        await wait_for(page, "falanteDebug.state === 'speaking'", timeout=30)
        start = await now_ms(page)
        await wait_for(page, "falanteDebug.mouthOpen > 0.3")
        await page.screenshot(path=str(screenshots / "kiosk_3d.png"))
        influence = await page.evaluate(
            "() => { const m = falanteDebug.avatar.meshes.find(m => m.name === 'Mouth');"
            " return m.morphTargetInfluences[m.morphTargetDictionary.jawOpen]; }")
        assert influence > 0
        await wait_for(page, "falanteDebug.state === 'idle'", timeout=60)
        await wait_for(page, "falanteDebug.mouthOpen < 0.01", timeout=15)
        idle = await now_ms(page)
        # swiftshader renders few frames per second: fewer samples, same shape of motion
        assert_lip_sync([s for s in await wait_frames(page, start, count=3) if s["t"] < idle], min_playing=3,
                        min_levels=3, check_height=False)
        assert page.errors == []
