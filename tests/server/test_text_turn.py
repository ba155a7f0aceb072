"""A typed turn through the real websocket server with fake models: the full response event sequence."""

import asyncio
import urllib.request

from tests.conftest import fake_backends
from tests.fakes import FakeLLM


async def test_typed_message_gets_audio_reply_with_avatar_frames(fake_server, client_for):
    llm = FakeLLM("Olá! Eu sou a Falante. Como posso ajudar?")
    async with fake_server(fake_backends(llm=llm)) as (url, app), client_for(url) as c:
        await c.send({"type": "conversation.item.create", "event_id": "e1",
                      "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Oi"}]}})
        added = await c.until("conversation.item.added")
        assert added["item"]["role"] == "user"
        await c.send({"type": "response.create"})
        done = await c.until("response.done")
    assert done["response"]["status"] == "completed"
    types = [e["type"] for e in c.events]
    for kind in ("response.created", "response.output_item.added", "response.content_part.added",
                 "response.output_audio_transcript.delta", "response.output_audio.delta", "falante.avatar.frames",
                 "response.output_audio.done", "response.output_audio_transcript.done", "response.output_item.done"):
        assert kind in types, kind
    assert types.index("response.created") < types.index("response.output_audio.delta") < types.index("response.done")
    transcript = c.of_type("response.output_audio_transcript.done")[0]["transcript"]
    assert transcript == "Olá! Eu sou a Falante. Como posso ajudar?"
    # frames come before the audio they cover and span the whole reply
    frames = [f for e in c.of_type("falante.avatar.frames") for f in e["frames"]]
    import base64
    total = sum(len(base64.b64decode(e["delta"])) // 2 for e in c.of_type("response.output_audio.delta"))
    assert total >= 24_000  # ≥ 1 s of audio
    assert frames[0]["sample"] <= 24_000 // 30 and frames[-1]["sample"] >= total - 24_000 // 15
    assert len(frames[0]["visemes"]) == 15
    # the persona is the system prompt and the user's words reached the model
    assert llm.requests[0][0].role == "system" and llm.requests[0][-1].content == "Oi"


async def test_language_guard_reports_a_reply_that_drifted_out_of_portuguese(fake_server, client_for):
    llm = FakeLLM("Sure! I can help you with that today.")
    async with fake_server(fake_backends(llm=llm)) as (url, app), client_for(url) as c:
        for reply, expected in (("Sure! I can help you with that today.", "en"), ("Claro, posso ajudar com isso.", "pt")):
            llm.reply = reply
            await c.send({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Oi"}]}})
            await c.send({"type": "response.create"})
            await c.until("response.done")
            assert c.of_type("falante.response.metrics")[-1]["language"] == expected
        host = url.removeprefix("ws://").split("/")[0]
        # off the loop: the server under test runs on this event loop
        metrics = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://{host}/metrics").read().decode())
    assert 'falante_replies_off_language_total{language="en"} 1.0' in metrics
