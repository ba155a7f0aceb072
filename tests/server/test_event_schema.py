"""The server-event check of tests/server/conftest.py: it fails on what broke clients, and both opt-in modes pass.

The autouse fixture validates every event of every server test; these tests show it can fail (the bugs openai-agents
reported before server/events.py) and run one conversation per opt-in mode to see what each client gets.
"""

import json

import numpy as np
import pytest
from pydantic import ValidationError

from server import events
from tests.conftest import dev_clip, fake_backends
from tests.fakes import FakeLLM
from tests.server.conftest import check_server_event

ITEM = events.message_item("item_1", "assistant", "completed", [{"type": "output_audio", "transcript": "Oi."}])


@pytest.mark.parametrize("bad", [
    # content_part.done with the item content's type instead of the part's
    {"event_id": "e", "type": "response.content_part.done", "response_id": "r", "item_id": "i", "output_index": 0,
     "content_index": 0, "part": {"type": "output_audio", "transcript": "Oi."}},
    # transcription result without usage
    {"event_id": "e", "type": "conversation.item.input_audio_transcription.completed", "item_id": "i",
     "content_index": 0, "transcript": "oi"},
    # a misspelt optional field (the SDK's models would keep it as an extra)
    {"event_id": "e", "type": "conversation.item.truncated", "item_id": "i", "content_index": 0, "audio_end_ms": 5,
     "audio_ms": 5},
    # no such server event
    {"event_id": "e", "type": "conversation.item.retrieve", "item_id": "i"},
    # a user item with an assistant's content type
    {"event_id": "e", "type": "conversation.item.added", "item": {**ITEM, "role": "user"}},
])
def test_the_check_refuses_events_that_broke_clients(bad):
    with pytest.raises((AssertionError, ValidationError)):
        check_server_event(bad, extensions=True)


def test_falante_events_and_fields_only_in_the_opt_in_mode():
    state = events.avatar_state("idle")
    check_server_event(state, extensions=True)
    with pytest.raises(AssertionError, match="did not opt in"):
        check_server_event(state, extensions=False)
    delta = events.transcription_delta("item_1", "oi", "oi")
    check_server_event(delta, extensions=True)
    with pytest.raises(AssertionError, match="text"):
        check_server_event(delta, extensions=False)


async def test_a_conversation_in_each_mode_sends_only_what_that_mode_allows(
        fake_server, client_for, every_sent_event_is_a_valid_server_event):
    sent = every_sent_event_is_a_valid_server_event
    speech = np.concatenate([dev_clip("d03_jf_alpha.wav"), np.zeros(24_000, np.float32)])
    async with fake_server(fake_backends(llm=FakeLLM("Claro, posso ajudar."))) as (url, _app):
        for target in (url.split("?")[0], url):
            async with client_for(target) as c:
                await c.send({"type": "session.update", "session": {"type": "realtime", "audio": {
                    "output": {"voice": "ash"}}}})
                await c.append(speech)
                completed = await c.until("conversation.item.input_audio_transcription.completed")
                await c.until("response.done")
                await c.send({"type": "conversation.item.retrieve", "item_id": completed["item_id"]})
                await c.until("conversation.item.retrieved")
                await c.send({"type": "conversation.item.create", "item": {
                    "type": "message", "role": "user", "content": [{"type": "input_text", "text": "E agora?"}]}})
                await c.send({"type": "response.create", "response": {"output_modalities": ["text"],
                                                                      "metadata": {"k": "v"}}})
                await c.until("response.done")
                await c.send({"type": "nope"})
                await c.until("error")
    by_mode = {mode: [json.loads(text)["type"] for m, text in sent if m == mode] for mode in (False, True)}
    for mode, kinds in by_mode.items():
        assert {"session.created", "response.done", "conversation.item.retrieved", "response.output_text.done",
                "error"} <= set(kinds), mode
    assert not [k for k in by_mode[False] if k.startswith("falante.")]
    assert {"falante.avatar.frames", "falante.response.metrics"} <= set(by_mode[True])
    # the fixture validates all of them at teardown (an invalid one fails this test)
