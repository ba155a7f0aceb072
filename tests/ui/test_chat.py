"""The Gradio chat (mounted by the real server app at /chat) in a real Chromium, with fake models: a typed
message gets a spoken, lip-synced reply; a message typed while the bot speaks interrupts it; voice/persona
settings reach the server; reset starts a new session."""

from __future__ import annotations

import pytest

from tests.conftest import fake_backends
from tests.fakes import FakeLLM, FakeTTS

from .pages import assert_lip_sync, assert_rest, now_ms, received, sent, wait_for, wait_frames

pytestmark = pytest.mark.browser
QUESTION = "Qual é o horário do museu?"


def echo_llm() -> FakeLLM:
    """Replies with what it was asked, so the test sees the typed text went through the server to the LLM."""
    return FakeLLM(lambda messages: f"Você escreveu: {messages[-1].content} Abrimos às nove horas.")


async def test_chat_typed_message_gets_a_lip_synced_reply(ui_server, browser_page, screenshots):
    backends = fake_backends(llm=echo_llm())
    async with ui_server(backends, server__auth_token="sekret") as (base, app), browser_page() as page:
        await page.goto(f"{base}/chat/?token=sekret")
        await wait_for(page, "falanteDebug.connected", timeout=60)
        await page.fill(".fa-text", QUESTION)
        await page.press(".fa-text", "Enter")
        await wait_for(page, "falanteDebug.state === 'speaking'", timeout=60)
        start = await now_ms(page)
        await wait_for(page, "falanteDebug.mouthOpen > 0.3")
        await page.screenshot(path=str(screenshots / "chat_speaking.png"))
        await wait_for(page, "falanteDebug.state === 'idle'", timeout=60)
        await wait_for(page, "falanteDebug.mouthOpen < 0.01", timeout=15)
        idle = await now_ms(page)
        assert_lip_sync([s for s in await wait_frames(page, start) if s["t"] < idle])
        assert_rest(await wait_frames(page, idle, count=15))
        log = await page.text_content(".fa-log")
        assert QUESTION in log and f"Você escreveu: {QUESTION} Abrimos às nove horas." in log
        item = (await sent(page, "conversation.item.create"))[0]["item"]
        assert item["content"][0] == {"type": "input_text", "text": QUESTION}
        assert app.state.falante.backends.llm.requests[0][-1].content == QUESTION
        assert [d["response"]["status"] for d in await received(page, "response.done")] == ["completed"]
        await page.screenshot(path=str(screenshots / "chat.png"))
        # settings: the voice list is the server's; voice and persona go out as a session.update and apply
        await page.click(".fa-settings summary")
        assert await page.eval_on_selector_all(".fa-voice option", "os => os.map((o) => o.value)") == \
            app.state.falante.backends.tts.voices()
        await page.select_option(".fa-voice", "fake_b")
        await page.fill(".fa-persona", "Você é um guia de museu.")
        await page.click(".fa-apply")
        await page.wait_for_function("() => __ws.recv.filter((e) => e.type === 'session.updated').length >= 2")
        applied = (await received(page, "session.updated"))[-1]["session"]
        assert applied["audio"]["output"]["voice"] == "fake_b"
        assert applied["instructions"] == "Você é um guia de museu."
        # reset opens a brand-new session with an empty log
        await page.click(".fa-reset")
        await wait_for(page, "falanteDebug.resets === 1 && falanteDebug.connected")
        sessions = [e["session"]["id"] for e in await received(page, "session.created")]
        assert len(set(sessions)) == 2 and await page.text_content(".fa-log") == ""
        assert await received(page, "error") == []
        assert page.errors == []


async def test_chat_message_typed_while_speaking_interrupts_the_reply(ui_server, browser_page):
    long_reply = " ".join(["O museu abre às nove horas e fecha às dezessete horas."] * 4)
    # rtf 0.5: the server is still synthesizing when the user types again, so there is a reply to cancel
    backends = fake_backends(llm=FakeLLM(lambda m: long_reply if len(m) <= 2 else "Certo."),
                             tts=FakeTTS(rtf=0.5))
    async with ui_server(backends) as (base, app), browser_page() as page:
        await page.goto(f"{base}/chat/")
        await wait_for(page, "falanteDebug.connected", timeout=60)
        await page.fill(".fa-text", "Quando abre?")
        await page.press(".fa-text", "Enter")
        await wait_for(page, "falanteDebug.mouthOpen > 0.3", timeout=60)
        await wait_for(page, "falanteDebug.client.player.position() > 1.5 * 24000")  # some words were heard
        first = (await received(page, "response.created"))[0]["response"]["id"]
        await page.fill(".fa-text", "Obrigado.")
        await page.press(".fa-text", "Enter")
        # the page cancels the reply on the server, stops its audio and reports what was heard
        cancel = (await sent(page, "response.cancel"))[0]
        truncate = (await sent(page, "conversation.item.truncate"))[0]
        assert cancel["response_id"] == first and truncate["audio_end_ms"] > 0
        await wait_for(page, "__ws.recv.filter((e) => e.type === 'response.done').length >= 2", timeout=60)
        statuses = {d["response"]["id"]: d["response"]["status"] for d in await received(page, "response.done")}
        assert statuses[first] == "cancelled" and list(statuses.values()).count("completed") == 1
        await wait_for(page, "falanteDebug.state === 'idle'", timeout=60)
        assert "Certo." in await page.text_content(".fa-log")
        # history holds only the part of the first reply that was heard
        history = app.state.falante.backends.llm.requests[1]
        heard = next(m.content for m in history if m.role == "assistant")
        assert 0 < len(heard) < len(long_reply) and long_reply.startswith(heard)
        assert await received(page, "error") == []
        assert page.errors == []
