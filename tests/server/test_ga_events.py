"""Fields OpenAI's GA server events carry and clients rely on (openai-agents, pipecat, LiveKit read them).

Each of these was missing or wrong before server/events.py: content_part.done said `output_audio`, transcription
results and response.done had no `usage`, `conversation.item.retrieve` was an unknown event, and
`response.metadata` (LiveKit's generate_reply() matches its reply by it) was not echoed.
"""

import numpy as np

from tests.conftest import dev_clip, fake_backends
from tests.fakes import FakeLLM


def _typed(text: str) -> dict:
    return {"type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}


async def test_typed_turn_echoes_metadata_reports_usage_and_types_parts(fake_server, client_for):
    async with fake_server(fake_backends(llm=FakeLLM("Bom dia."))) as (url, _app), client_for(url) as c:
        await c.send(_typed("Oi"))
        await c.send({"type": "response.create", "response": {"metadata": {"client_event_id": "ev_42"}}})
        done = await c.until("response.done")
    created = c.of_type("response.created")[0]
    assert created["response"]["metadata"] == {"client_event_id": "ev_42"}
    assert done["response"]["metadata"] == {"client_event_id": "ev_42"}
    usage = done["response"]["usage"]
    assert usage["output_tokens"] > 0 and usage["input_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert c.of_type("response.content_part.added")[0]["part"]["type"] == "audio"
    part = c.of_type("response.content_part.done")[0]["part"]
    assert part == {"type": "audio", "transcript": "Bom dia."}
    # the user's typed item is an input_text part, the assistant's reply an output_audio one
    user_item = c.of_type("conversation.item.added")[0]["item"]
    assert user_item["content"] == [{"type": "input_text", "text": "Oi"}]
    assert c.of_type("response.output_item.done")[0]["item"]["content"][0]["type"] == "output_audio"


async def test_a_duplicate_item_id_gets_openais_error_code(fake_server, client_for):
    """LiveKit's realtime plugin re-sends items it synced before and treats OpenAI's `item_create_duplicate_item_id`
    as success; any other code fails its chat-context update."""
    async with fake_server(fake_backends()) as (url, _app), client_for(url) as c:
        item = {"type": "message", "id": "item_a", "role": "user", "content": [{"type": "input_text", "text": "Oi"}]}
        await c.send({"type": "conversation.item.create", "item": item})
        await c.until("conversation.item.done")
        await c.send({"type": "conversation.item.create", "event_id": "ev_dup", "item": item})
        error = (await c.until("error"))["error"]
    assert (error["code"], error["event_id"], error["param"]) == ("item_create_duplicate_item_id", "ev_dup", "item.id")


async def test_spoken_turn_has_usage_and_retrieve_returns_the_transcribed_item(fake_server, client_for):
    async with fake_server(fake_backends(llm=FakeLLM("Certo."))) as (url, _app), client_for(url) as c:
        await c.append(np.concatenate([dev_clip("d03_jf_alpha.wav"), np.zeros(24_000, np.float32)]))
        completed = await c.until("conversation.item.input_audio_transcription.completed")
        await c.send({"type": "conversation.item.retrieve", "item_id": completed["item_id"]})
        retrieved = await c.until("conversation.item.retrieved")
        await c.until("response.done")
        rid_item = c.of_type("response.output_item.done")[0]["item"]["id"]
        await c.send({"type": "conversation.item.retrieve", "item_id": rid_item})
        assistant = await c.until("conversation.item.retrieved")
        await c.send({"type": "conversation.item.retrieve", "event_id": "r9", "item_id": "item_nope"})
        error = await c.until("error")
    assert completed["usage"]["type"] == "duration" and completed["usage"]["seconds"] > 0.5
    assert retrieved["item"]["id"] == completed["item_id"]
    assert retrieved["item"]["content"] == [{"type": "input_audio", "transcript": completed["transcript"]}]
    assert assistant["item"]["role"] == "assistant"
    assert assistant["item"]["content"][0] == {"type": "output_audio", "transcript": "Certo."}
    assert (error["error"]["code"], error["error"]["event_id"]) == ("item_retrieve_invalid_item_id", "r9")


async def test_falante_extensions_only_for_clients_that_opt_in(fake_server, client_for):
    async with fake_server(fake_backends(llm=FakeLLM("Certo."))) as (url, _app):
        plain_url = url.split("?")[0]
        for opted_in, target in ((False, plain_url), (True, url)):
            async with client_for(target) as c:
                await c.append(np.concatenate([dev_clip("d03_jf_alpha.wav"), np.zeros(24_000, np.float32)]))
                await c.until("response.done")
                kinds = {e["type"] for e in c.events}
                falante = {k for k in kinds if k.startswith("falante.")}
                if opted_in:
                    assert {"falante.avatar.frames", "falante.avatar.state", "falante.response.metrics"} <= falante
                else:
                    assert not falante, falante


async def test_session_created_carries_falante_fields_only_when_opted_in(fake_server):
    import json

    import websockets
    async with fake_server() as (url, _app):
        for target, expected in ((url.split("?")[0], False), (url, True), (url.split("?")[0] + "?extensions=x,falante", True)):
            async with websockets.connect(target) as ws:
                created = json.loads(await ws.recv())
            assert created["type"] == "session.created"
            assert ("falante" in created["session"]) is expected, target


def test_extension_fields_are_stripped_for_plain_clients():
    from server import events
    delta = events.transcription_delta("item_1", "olá", "olá mundo")
    assert events.for_client(delta, extensions=True)["text"] == "olá mundo"
    plain = events.for_client(delta, extensions=False)
    assert "text" not in plain and delta["text"] == "olá mundo"  # the original is not mutated
    events.validate(plain, extensions=False)
    assert events.for_client(events.avatar_state("idle"), extensions=False) is None
