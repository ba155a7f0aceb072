"""The Gradio chat in a real Chromium: a typed message gets a spoken, lip-synced reply; reset starts a new session."""

from __future__ import annotations

import asyncio

import pytest

from .standin import StandIn

pytestmark = pytest.mark.browser


@pytest.fixture
async def chat_server():
    """FastAPI app with the Gradio chat at /chat and ui/static at /static (as the lead's server mounts them),
    talking to the scripted stand-in websocket."""
    import gradio as gr
    import uvicorn
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    from ui import STATIC_DIR, build_chat

    async with StandIn(speech_turns=0) as srv:
        app = FastAPI()
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
        app = gr.mount_gradio_app(app, build_chat(ws_path=f"ws://127.0.0.1:{srv.port}/v1/realtime"), path="/chat")
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield srv, f"http://127.0.0.1:{port}"
        server.should_exit = True
        await task


async def test_chat_typed_message_gets_a_lip_synced_reply(page, chat_server, screenshots):
    srv, base = chat_server
    await page.goto(f"{base}/chat/?token=sekret")
    await page.wait_for_function("() => window.falanteDebug && falanteDebug.connected", timeout=30_000)
    await page.fill(".fa-text", "Qual é o horário do museu?")
    await page.press(".fa-text", "Enter")
    await page.wait_for_function("() => falanteDebug.state === 'speaking'", timeout=15_000)
    opens = []
    while await page.evaluate("() => falanteDebug.state === 'speaking'"):  # sample until the reply ends
        opens.append(await page.evaluate("() => falanteDebug.mouthOpen"))
        if len(opens) == 20:
            await page.screenshot(path=str(screenshots / "chat_speaking.png"))
        await asyncio.sleep(0.03)
    assert max(opens) > 0.3 and len({round(o, 2) for o in opens}) >= 4
    await page.wait_for_function("() => falanteDebug.state === 'idle'", timeout=15_000)
    await page.wait_for_function("() => falanteDebug.mouthOpen < 0.01", timeout=2_000)
    log = await page.text_content(".fa-log")
    assert "Qual é o horário do museu?" in log and "Você escreveu: Qual é o horário do museu?" in log
    sent = [e for e in srv.received if e["type"] == "conversation.item.create"]
    assert sent[0]["item"]["content"][0] == {"type": "input_text", "text": "Qual é o horário do museu?"}
    await page.screenshot(path=str(screenshots / "chat.png"))
    # settings: voice change is sent as a session.update; reset opens a brand-new session
    await page.click(".fa-settings summary")
    await page.select_option(".fa-voice", "jm_kumo")
    await page.fill(".fa-persona", "Você é um guia de museu.")
    await page.click(".fa-apply")
    await srv.wait_until(lambda: srv.types().count("session.update") >= 2)
    update = [e for e in srv.received if e["type"] == "session.update"][-1]
    assert update["session"]["audio"]["output"]["voice"] == "jm_kumo"
    assert update["session"]["instructions"] == "Você é um guia de museu."
    await page.click(".fa-reset")
    await page.wait_for_function("() => falanteDebug.resets === 1 && falanteDebug.connected")
    assert srv.connections == 2 and await page.text_content(".fa-log") == ""
    assert page.errors == []
