"""Every event any server test makes the server send is checked against the official SDK's server-event union.

Why here: clients such as openai-agents validate each event with this same TypeAdapter and report a failure as an
error; a wrong literal or a missing field anywhere in the server suite must fail the test that produced it. The
check is independent of server/events.py (which validates too): it records the text the Outbox actually wrote.
A session without `?extensions=falante` may receive nothing but OpenAI GA events with OpenAI's fields; one with it,
in addition, falante.* events (checked against falante's models) and the documented extension fields.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from openai.types.realtime import RealtimeServerEvent
from pydantic import BaseModel, Field, TypeAdapter

from server import events as server_events
from server import session as server_session
from server.outbox import Outbox

SERVER_EVENT = TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])
# fields OpenAI's server sends that the SDK's models omit (session id/object), and falante's opt-in extensions
UNMODELLED = {("session.created", "session.id"), ("session.created", "session.object"),
              ("session.updated", "session.id"), ("session.updated", "session.object")}
EXTENSIONS = {("session.created", "session.falante"), ("session.updated", "session.falante"),
              ("conversation.item.input_audio_transcription.delta", "text")}


def extra_fields(value: Any, path: str = "") -> list[str]:
    """Fields the SDK's models keep as extras (they accept anything): each is a typo unless documented."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        found += [f"{path}{name}" for name in value.model_extra or {}]
        for name in type(value).model_fields:
            found += extra_fields(getattr(value, name), f"{path}{name}.")
    elif isinstance(value, list):
        for item in value:
            found += extra_fields(item, path)
    return found


def check_server_event(event: dict[str, Any], extensions: bool) -> None:
    """Raise AssertionError (or pydantic's ValidationError) unless a client in this mode may receive `event`."""
    kind = event.get("type")
    if isinstance(kind, str) and kind.startswith("falante."):
        assert extensions, f"{kind} sent to a client that did not opt in"
        server_events.FALANTE_MODELS[kind].model_validate(event)
        return
    if kind == "session.created" and "audio" in event.get("session", {}):  # GA pcm is 24 kHz; falante allows others
        event = server_events._without_format_rates(event)
    parsed = SERVER_EVENT.validate_python(event)
    allowed = UNMODELLED | (EXTENSIONS if extensions else set())
    extra = [f for f in extra_fields(parsed) if (kind, f) not in allowed]
    assert not extra, f"{kind}: fields beyond OpenAI's model: {extra}"


@pytest.fixture(autouse=True)
def every_sent_event_is_a_valid_server_event(monkeypatch: pytest.MonkeyPatch):
    """Records what each session's Outbox writes (Outboxes a test builds by hand, with made-up events, are not)."""
    sent: list[tuple[bool, str]] = []

    class RecordingOutbox(Outbox):
        def __init__(self, send_text: Any, *args: Any, **kwargs: Any) -> None:
            async def record(text: str) -> None:
                sent.append((self.extensions, text))
                await send_text(text)
            super().__init__(record, *args, **kwargs)

    monkeypatch.setattr(server_session, "Outbox", RecordingOutbox)
    yield sent
    for extensions, text in sent:
        check_server_event(json.loads(text), extensions)
