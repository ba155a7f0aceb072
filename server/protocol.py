"""The wire protocol: OpenAI Realtime API (GA event names) client events, validated strictly.

Why strict: a typo in a field name must come back as an `error` naming the parameter, not be silently ignored.
Fields of the OpenAI API that falante accepts but does not act on (tracing, …) are listed in
`IGNORED_SESSION_FIELDS` and documented in docs/protocol.md. See docs/protocol.md for the whole subset.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError

PROTOCOL_VERSION = "falante-realtime/1"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------ session config
class AudioFormat(Strict):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"] = "audio/pcm"
    rate: int | None = Field(default=None, ge=8000, le=48000)  # GA: 24000 only; falante resamples any of 8–48 kHz


class TurnDetection(Strict):
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(default=None, ge=0, le=2000)
    silence_duration_ms: int | None = Field(default=None, ge=100, le=5000)
    create_response: bool | None = None
    interrupt_response: bool | None = None
    idle_timeout_ms: int | None = None
    eagerness: Literal["low", "medium", "high", "auto"] | None = None  # semantic_vad only (auto = medium)


class Transcription(Strict):
    model: str | None = None
    language: str | None = Field(default=None, max_length=8)
    prompt: str | None = Field(default=None, max_length=2000)


class AudioInput(Strict):
    format: AudioFormat | None = None
    turn_detection: TurnDetection | None = Field(default=None)
    transcription: Transcription | None = None
    noise_reduction: dict[str, Any] | None = None  # accepted, not applied


class AudioOutput(Strict):
    format: AudioFormat | None = None
    voice: str | None = Field(default=None, max_length=64)
    speed: float | None = Field(default=None, ge=0.25, le=1.5)


class AudioConfig(Strict):
    input: AudioInput | None = None
    output: AudioOutput | None = None


# ------------------------------------------------------------------------------------------ tools
MAX_TOOLS = 32  # functions one session (or response) may offer; each is in every prompt (docs/protocol.md)
MAX_TOOL_SCHEMA_CHARS = 8000  # one tool's description + parameters, as JSON
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class FunctionTool(Strict):
    """OpenAI `RealtimeFunctionTool`; `parameters` must be a JSON schema of an object (checked in config_state)."""

    type: Literal["function"] = "function"
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=4000)
    parameters: dict[str, Any] | None = None


class ToolChoiceFunction(Strict):
    type: Literal["function"]
    name: str = Field(pattern=TOOL_NAME_PATTERN)


ToolChoiceParam = Literal["auto", "none", "required"] | ToolChoiceFunction

IGNORED_SESSION_FIELDS = ("tracing", "prompt", "include", "truncation", "reasoning",
                          "parallel_tool_calls", "model")


class SessionUpdate(Strict):
    type: Literal["realtime"] = "realtime"
    instructions: str | None = None
    output_modalities: list[Literal["text", "audio"]] | None = Field(default=None, min_length=1, max_length=1)
    audio: AudioConfig | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    tools: list[FunctionTool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: ToolChoiceParam | None = None
    tracing: Any = None
    prompt: Any = None
    include: list[str] | None = None
    truncation: Any = None
    reasoning: Any = None
    parallel_tool_calls: bool | None = None
    model: str | None = None


# ------------------------------------------------------------------------------------------ client events
class ClientEvent(Strict):
    event_id: str | None = Field(default=None, max_length=128)


class SessionUpdateEvent(ClientEvent):
    type: Literal["session.update"]
    session: SessionUpdate


class AppendEvent(ClientEvent):
    type: Literal["input_audio_buffer.append"]
    audio: str


class CommitEvent(ClientEvent):
    type: Literal["input_audio_buffer.commit"]


class ClearEvent(ClientEvent):
    type: Literal["input_audio_buffer.clear"]


class ContentPart(Strict):
    type: Literal["input_text", "input_audio", "text", "output_text", "output_audio"]
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None


class Item(Strict):
    id: str | None = Field(default=None, max_length=64)
    type: Literal["message"] = "message"
    object: Literal["realtime.item"] | None = None
    role: Literal["user", "assistant", "system"]
    status: Literal["completed", "incomplete", "in_progress"] | None = None
    content: list[ContentPart] = Field(min_length=1, max_length=16)


class _FunctionItem(Strict):
    id: str | None = Field(default=None, max_length=64)
    object: Literal["realtime.item"] | None = None
    status: Literal["completed", "incomplete", "in_progress"] | None = None
    call_id: str = Field(min_length=1, max_length=64)


class FunctionCallItem(_FunctionItem):
    """A call the client puts in the history itself (e.g. replaying a conversation)."""

    type: Literal["function_call"]
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    arguments: str


class FunctionCallOutputItem(_FunctionItem):
    """The client's result of running one of the model's calls."""

    type: Literal["function_call_output"]
    output: str


def _item_type(value: Any) -> str:
    """An item without `type` is a message (as before function calling); unknown types fail on the message model."""
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "message")
    return kind if kind in ("function_call", "function_call_output") else "message"


class ItemCreateEvent(ClientEvent):
    type: Literal["conversation.item.create"]
    previous_item_id: str | None = None
    item: Annotated[Annotated[Item, Tag("message")] | Annotated[FunctionCallItem, Tag("function_call")]
                    | Annotated[FunctionCallOutputItem, Tag("function_call_output")], Discriminator(_item_type)]


class ItemTruncateEvent(ClientEvent):
    type: Literal["conversation.item.truncate"]
    item_id: str
    content_index: int = Field(ge=0)
    audio_end_ms: int = Field(ge=0)


class ItemDeleteEvent(ClientEvent):
    type: Literal["conversation.item.delete"]
    item_id: str


class ItemRetrieveEvent(ClientEvent):
    type: Literal["conversation.item.retrieve"]
    item_id: str


class ResponseOptions(Strict):
    instructions: str | None = None
    output_modalities: list[Literal["text", "audio"]] | None = Field(default=None, min_length=1, max_length=1)
    max_output_tokens: int | Literal["inf"] | None = None
    conversation: Literal["auto", "none"] | None = None
    metadata: dict[str, str] | None = None
    audio: AudioConfig | None = None
    tools: list[FunctionTool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: ToolChoiceParam | None = None


class ResponseCreateEvent(ClientEvent):
    type: Literal["response.create"]
    response: ResponseOptions | None = None


class ResponseCancelEvent(ClientEvent):
    type: Literal["response.cancel"]
    response_id: str | None = None


AnyClientEvent = Annotated[
    SessionUpdateEvent | AppendEvent | CommitEvent | ClearEvent | ItemCreateEvent | ItemTruncateEvent
    | ItemDeleteEvent | ItemRetrieveEvent | ResponseCreateEvent | ResponseCancelEvent,
    Field(discriminator="type"),
]
CLIENT_EVENT_TYPES = frozenset(
    m.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
    for m in (SessionUpdateEvent, AppendEvent, CommitEvent, ClearEvent, ItemCreateEvent, ItemTruncateEvent,
              ItemDeleteEvent, ItemRetrieveEvent, ResponseCreateEvent, ResponseCancelEvent)
)
_adapter: TypeAdapter[Any] = TypeAdapter(AnyClientEvent)


class ProtocolError(Exception):
    """A client mistake, reported as an `error` event (OpenAI shape); the session keeps working."""

    def __init__(self, code: str, message: str, *, param: str | None = None, event_id: str | None = None,
                 type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.code, self.message, self.param, self.event_id, self.type = code, message, param, event_id, type

    def to_event(self) -> dict[str, Any]:
        from server import events  # events imports new_id from here
        return events.error(self.code, self.message, type=self.type, param=self.param, event_id=self.event_id)


def has_lone_surrogate(value: Any) -> bool:
    """JSON may escape a lone UTF-16 surrogate ("\\ud800"): Python keeps it, and UTF-8 cannot encode it later.

    Iterative (a deeply nested event must not hit the recursion limit); ASCII strings such as audio are skipped.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode()
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_client_event(raw: Any) -> Any:
    """Validate one decoded JSON value as a client event; raise ProtocolError saying exactly what is wrong."""
    if has_lone_surrogate(raw):  # checked first: nothing of this event may be echoed back (not even event_id)
        raise ProtocolError("invalid_text", "the event contains a lone UTF-16 surrogate (an unpaired \\ud800-"
                            "\\udfff escape); text must be valid Unicode")
    if not isinstance(raw, dict):
        raise ProtocolError("invalid_event", f"an event must be a JSON object, got {type(raw).__name__}")
    event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("missing_type", "the event has no string 'type'", param="type", event_id=event_id)
    if kind not in CLIENT_EVENT_TYPES:
        raise ProtocolError("unknown_event", f"unknown event type {kind!r}; see docs/protocol.md for the subset",
                            param="type", event_id=event_id)
    try:
        return _adapter.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:] if p != kind and not _union_tag(p)) or None
        if first["type"] == "extra_forbidden":
            raise ProtocolError("unknown_parameter", f"Unknown parameter: '{where}'", param=where,
                                event_id=event_id) from None
        raise ProtocolError("invalid_value", f"Invalid value for '{where}': {first['msg']}", param=where,
                            event_id=event_id) from None


def _union_tag(part: Any) -> bool:
    """pydantic puts union member tags in error locations ("item.message.type"): not a field the client sent."""
    return isinstance(part, str) and ("[" in part or part in _UNION_TAGS)


_UNION_TAGS = frozenset({"message", "function_call", "function_call_output", "ToolChoiceFunction"})
_counter = itertools.count(1)


def new_id(prefix: str) -> str:
    """OpenAI-style ids ("event_…", "item_…", "resp_…"): unique per process, sortable within a session."""
    return f"{prefix}_{next(_counter):06d}{secrets.token_hex(4)}"
