"""Fuzz: random event objects never crash a session; each gets a well-formed reply or an `error`."""

import asyncio
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.metrics import Metrics
from server.protocol import CLIENT_EVENT_TYPES
from server.session import Session
from tests.conftest import fake_backends, fast_settings

# text with lone surrogates too: JSON can escape them ("\\ud800"), and they once killed the session's writer
any_text = st.text(max_size=20) | st.text(st.sampled_from("a ç\ud800\udfff"), max_size=4)
json_leaf = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | any_text
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4) |
                          st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
field_names = st.sampled_from(["session", "audio", "item", "item_id", "content_index", "audio_end_ms", "response",
                               "response_id", "event_id", "previous_item_id", "instructions", "voice", "x"])
event = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(CLIENT_EVENT_TYPES)) | st.text(max_size=30)},
    optional={"event_id": any_text | st.integers()},
).flatmap(lambda base: st.dictionaries(field_names, json_value, max_size=4).map(lambda extra: {**extra, **base}))


async def _drive(events: list) -> list[dict]:
    sent: list[str] = []

    async def send_text(text: str) -> None:
        text.encode()  # as the websocket does: UTF-8 (a lone surrogate raised here and killed the writer)
        sent.append(text)

    session = Session(fake_backends(), fast_settings(), Metrics(), send_text)
    writer = asyncio.create_task(session.outbox.run())
    await session.open()
    for ev in events:
        await session.handle_message(ev if isinstance(ev, str) else json.dumps(ev))
    await session.close()
    session.outbox.close()
    await asyncio.wait_for(writer, 5)
    return [json.loads(s) for s in sent]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event | any_text, min_size=1, max_size=5))
def test_random_events_never_crash(events):
    replies = asyncio.run(_drive(events))
    assert replies[0]["type"] == "session.created"
    for reply in replies:
        assert isinstance(reply.get("type"), str) and reply.get("event_id")
        if reply["type"] == "error":
            assert set(reply["error"]) >= {"type", "code", "message", "event_id"}
            assert reply["error"]["type"] != "server_error", reply  # internal_error etc.: a server bug, not an answer
