"""Every server event falante sends, built here and only here, and checked against the official SDK's models.

Why one place: clients (openai-agents, pipecat, LiveKit) validate what they receive against OpenAI's GA types; a
wrong literal or a missing field written in one module used to break them. Each constructor below returns the wire
dict after validating it against `openai.types.realtime`'s model for its type (falante's own `falante.*` events
against the models defined here): a wrong field, a missing required one or a wrong literal raises `EventError` in
the server (a bug, caught by the tests), never reaches a client. Fields outside OpenAI's models are refused too,
except the few documented extensions in `EXTENSION_FIELDS`, which only clients that opted in receive
(`for_client`).

Function calling's items and `response.function_call_arguments.*` events are here too; a response's message and
its calls each have their own `output_index` (the order the model produced them).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from openai.types.realtime import RealtimeServerEvent
from pydantic import BaseModel, ConfigDict, ValidationError

from falante.types import ToolCall
from server.protocol import new_id

ARGUMENT_DELTA_CHARS = 64  # a call's validated arguments go out in pieces of this size (a client may show them grow)
EXTENSIONS_QUERY = "extensions"  # `?extensions=falante` on the websocket URL: the opt-in (docs/protocol.md)
FALANTE_PREFIX = "falante."
# Extension fields inside OpenAI events (path from the event root); stripped for clients that did not opt in.
EXTENSION_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "session.created": (("session", "falante"),),
    "session.updated": (("session", "falante"),),
    "conversation.item.input_audio_transcription.delta": (("text",),),
}

# Fields OpenAI's server sends that the SDK's models leave out (its session objects carry an id and an object name).
UNMODELLED_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "session.created": (("session", "id"), ("session", "object")),
    "session.updated": (("session", "id"), ("session", "object")),
}


class EventError(ValueError):
    """A server event that does not match its schema: a falante bug."""


# ------------------------------------------------------------------------------------------ falante.* events
class _Falante(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: str


class AvatarFrame(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sample: int
    visemes: list[float]
    blendshapes: dict[str, float]
    expression: str


class AvatarFrames(_Falante):
    type: Literal["falante.avatar.frames"]
    response_id: str
    item_id: str
    fps: int
    sample_rate: int
    frames: list[AvatarFrame]


class AvatarState(_Falante):
    type: Literal["falante.avatar.state"]
    state: Literal["idle", "listening", "thinking", "speaking"]
    expression: str
    response_id: str | None = None
    item_id: str | None = None


class EndOfTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["server_vad", "semantic_vad"]
    decision: str
    score: float | None
    waited_ms: float | int


class ResponseMetrics(_Falante):
    type: Literal["falante.response.metrics"]
    response_id: str
    language: str | None  # the reply's language as detected (None: too little text to tell)
    latency_ms: dict[str, float]
    audio_ms: int
    end_of_turn: EndOfTurn | None


def _type_of(model: type[BaseModel]) -> str:
    return get_args(model.model_fields["type"].annotation)[0]


OPENAI_MODELS: dict[str, type[BaseModel]] = {_type_of(m): m for m in get_args(get_args(RealtimeServerEvent)[0])}
FALANTE_MODELS: dict[str, type[BaseModel]] = {_type_of(m): m for m in (AvatarFrames, AvatarState, ResponseMetrics)}


# ------------------------------------------------------------------------------------------ validation
def validate(event: dict[str, Any], *, extensions: bool = True) -> None:
    """Raise EventError unless `event` is a valid OpenAI GA server event (or, with `extensions`, a falante.* one)
    with no field beyond its model but the documented extensions."""
    kind = event.get("type")
    model = OPENAI_MODELS.get(kind) or (FALANTE_MODELS.get(kind) if extensions else None)  # type: ignore[arg-type]
    if model is None:
        raise EventError(f"{kind!r} is not a server event type" + ("" if extensions else " of OpenAI's GA API"))
    try:
        parsed = model.model_validate(_without_format_rates(event))
    except ValidationError as exc:
        raise EventError(f"{kind}: {exc}") from None
    if kind in FALANTE_MODELS:
        return  # falante's own models forbid unknown fields themselves
    allowed = {("",) + path for path in UNMODELLED_FIELDS.get(kind, ())}
    if extensions:
        allowed |= {("",) + path for path in EXTENSION_FIELDS.get(kind, ())}
    if extra := _extra_fields(parsed, ("",), allowed):
        raise EventError(f"{kind}: fields not in OpenAI's model: {', '.join(extra)}")


def _extra_fields(value: Any, path: tuple[str, ...], allowed: set[tuple[str, ...]]) -> list[str]:
    """Fields kept as pydantic extras (OpenAI's models allow any): each one is a typo unless documented."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        for name in value.model_extra or {}:
            if path + (name,) not in allowed:
                found.append(".".join(path[1:] + (name,)))
        for name in type(value).model_fields:
            found += _extra_fields(getattr(value, name), path + (name,), allowed)
    elif isinstance(value, list):
        for item in value:
            found += _extra_fields(item, path, allowed)
    return found


def _without_format_rates(event: dict[str, Any]) -> dict[str, Any]:
    """GA's `audio/pcm` is 24 kHz only; falante also accepts 8–48 kHz when a client asks (documented), so a
    session echoing another rate is checked without it."""
    session = event.get("session")
    if not isinstance(session, dict) or not isinstance(session.get("audio"), dict):
        return event
    audio = {k: dict(v) for k, v in session["audio"].items() if isinstance(v, dict)}
    for direction in audio.values():
        fmt = direction.get("format")
        if isinstance(fmt, dict) and fmt.get("rate") not in (None, 24_000):
            direction["format"] = {k: v for k, v in fmt.items() if k != "rate"}
    return {**event, "session": {**session, "audio": audio}}


def for_client(event: dict[str, Any], extensions: bool) -> dict[str, Any] | None:
    """The event as this client gets it: without the opt-in, no falante.* event and no extension field."""
    if extensions:
        return event
    kind = event["type"]
    if kind.startswith(FALANTE_PREFIX):
        return None
    paths = EXTENSION_FIELDS.get(kind)
    if not paths:
        return event
    event = dict(event)
    for path in paths:
        parent = event
        for name in path[:-1]:
            if not isinstance(parent.get(name), dict):
                break
            parent[name] = parent = dict(parent[name])
        else:
            parent.pop(path[-1], None)
    return event


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    event = {"event_id": new_id("event"), "type": kind, **fields}
    validate(event)
    return event


# ------------------------------------------------------------------------------------------ shared objects
def message_item(item_id: str, role: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "object": "realtime.item", "role": role, "status": status,
            "content": content}


def function_call_item(item_id: str, call: ToolCall, status: str) -> dict[str, Any]:
    """The `function_call` item; its arguments are empty while it is in progress, as OpenAI sends it."""
    return {"id": item_id, "type": "function_call", "object": "realtime.item", "status": status,
            "call_id": call.call_id, "name": call.name,
            "arguments": "" if status == "in_progress" else call.arguments}


def function_call_output_item(item_id: str, call_id: str, output: str) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call_output", "object": "realtime.item", "status": "completed",
            "call_id": call_id, "output": output}


def text_part(role: str, text: str) -> dict[str, Any]:
    """A message item's text content: `input_text` for user/system items, `output_text` for the assistant's."""
    return {"type": "output_text" if role == "assistant" else "input_text", "text": text}


def error_body(code: str, message: str, *, type: str = "invalid_request_error", param: str | None = None,
               event_id: str | None = None) -> dict[str, Any]:
    return {"type": type, "code": code, "message": message, "param": param, "event_id": event_id}


# ------------------------------------------------------------------------------------------ session
def session_created(session: dict[str, Any]) -> dict[str, Any]:
    return _event("session.created", session=session)


def session_updated(session: dict[str, Any]) -> dict[str, Any]:
    return _event("session.updated", session=session)


def error(code: str, message: str, *, type: str = "invalid_request_error", param: str | None = None,
          event_id: str | None = None) -> dict[str, Any]:
    return _event("error", error=error_body(code, message, type=type, param=param, event_id=event_id))


# ------------------------------------------------------------------------------------------ input audio
def speech_started(item_id: str, audio_start_ms: int) -> dict[str, Any]:
    return _event("input_audio_buffer.speech_started", audio_start_ms=audio_start_ms, item_id=item_id)


def speech_stopped(item_id: str, audio_end_ms: int) -> dict[str, Any]:
    return _event("input_audio_buffer.speech_stopped", audio_end_ms=audio_end_ms, item_id=item_id)


def committed(item_id: str, previous_item_id: str | None) -> dict[str, Any]:
    return _event("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous_item_id)


def cleared() -> dict[str, Any]:
    return _event("input_audio_buffer.cleared")


def transcription_delta(item_id: str, delta: str, text: str) -> dict[str, Any]:
    """`text` (extension): the whole current partial, whose unconfirmed tail may change; `delta` only appends."""
    return _event("conversation.item.input_audio_transcription.delta", item_id=item_id, content_index=0,
                  delta=delta, text=text)


def transcription_completed(item_id: str, transcript: str, audio_seconds: float) -> dict[str, Any]:
    """`usage` in Whisper's unit: seconds of audio transcribed (OpenAI's `duration` usage)."""
    return _event("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0,
                  transcript=transcript, usage={"type": "duration", "seconds": round(audio_seconds, 3)})


# ------------------------------------------------------------------------------------------ conversation
def item_added(item: dict[str, Any], previous_item_id: str | None) -> dict[str, Any]:
    return _event("conversation.item.added", previous_item_id=previous_item_id, item=item)


def item_done(item: dict[str, Any], previous_item_id: str | None) -> dict[str, Any]:
    return _event("conversation.item.done", previous_item_id=previous_item_id, item=item)


def item_retrieved(item: dict[str, Any]) -> dict[str, Any]:
    return _event("conversation.item.retrieved", item=item)


def item_truncated(item_id: str, content_index: int, audio_end_ms: int) -> dict[str, Any]:
    return _event("conversation.item.truncated", item_id=item_id, content_index=content_index,
                  audio_end_ms=audio_end_ms)


def item_deleted(item_id: str) -> dict[str, Any]:
    return _event("conversation.item.deleted", item_id=item_id)


# ------------------------------------------------------------------------------------------ responses
def response(response_id: str, status: str, *, modality: str, output: list[dict[str, Any]],
             metadata: dict[str, str] | None, voice: str | None = None,
             max_output_tokens: int | None = None, status_details: dict[str, Any] | None = None,
             usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `response` object of response.created / response.done (metadata: the client's, echoed)."""
    body: dict[str, Any] = {
        "id": response_id, "object": "realtime.response", "status": status, "status_details": status_details,
        "output": output, "output_modalities": [modality], "metadata": metadata, "usage": usage}
    if max_output_tokens is not None:
        body["max_output_tokens"] = max_output_tokens
    if voice is not None and modality == "audio":
        body["audio"] = {"output": {"voice": voice}}
    return body


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """Token usage of one response: the LLM's prompt and reply tokens (the reply's text is what TTS speaks)."""
    return {"total_tokens": input_tokens + output_tokens, "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": {"text_tokens": input_tokens, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": output_tokens, "audio_tokens": 0}}


def response_created(body: dict[str, Any]) -> dict[str, Any]:
    return _event("response.created", response=body)


def response_done(body: dict[str, Any]) -> dict[str, Any]:
    return _event("response.done", response=body)


def output_item_added(response_id: str, item: dict[str, Any], output_index: int = 0) -> dict[str, Any]:
    return _event("response.output_item.added", response_id=response_id, output_index=output_index, item=item)


def output_item_done(response_id: str, item: dict[str, Any], output_index: int = 0) -> dict[str, Any]:
    return _event("response.output_item.done", response_id=response_id, output_index=output_index, item=item)


def _part(audio: bool, text: str) -> dict[str, Any]:
    """A response content part: `audio` (with its transcript) or `text`, as OpenAI's part events type it."""
    return {"type": "audio", "transcript": text} if audio else {"type": "text", "text": text}


def content_part_added(response_id: str, item_id: str, audio: bool, output_index: int = 0) -> dict[str, Any]:
    return _event("response.content_part.added", response_id=response_id, item_id=item_id,
                  output_index=output_index, content_index=0, part=_part(audio, ""))


def content_part_done(response_id: str, item_id: str, audio: bool, text: str,
                      output_index: int = 0) -> dict[str, Any]:
    return _event("response.content_part.done", response_id=response_id, item_id=item_id,
                  output_index=output_index, content_index=0, part=_part(audio, text))


def _output(kind: str, response_id: str, item_id: str, output_index: int, **fields: Any) -> dict[str, Any]:
    return _event(kind, response_id=response_id, item_id=item_id, output_index=output_index, content_index=0,
                  **fields)


def audio_delta(response_id: str, item_id: str, delta: str, output_index: int = 0) -> dict[str, Any]:
    return _output("response.output_audio.delta", response_id, item_id, output_index, delta=delta)


def audio_done(response_id: str, item_id: str, output_index: int = 0) -> dict[str, Any]:
    return _output("response.output_audio.done", response_id, item_id, output_index)


def audio_transcript_delta(response_id: str, item_id: str, delta: str, output_index: int = 0) -> dict[str, Any]:
    return _output("response.output_audio_transcript.delta", response_id, item_id, output_index, delta=delta)


def audio_transcript_done(response_id: str, item_id: str, transcript: str, output_index: int = 0) -> dict[str, Any]:
    return _output("response.output_audio_transcript.done", response_id, item_id, output_index,
                   transcript=transcript)


def text_delta(response_id: str, item_id: str, delta: str, output_index: int = 0) -> dict[str, Any]:
    return _output("response.output_text.delta", response_id, item_id, output_index, delta=delta)


def text_done(response_id: str, item_id: str, text: str, output_index: int = 0) -> dict[str, Any]:
    return _output("response.output_text.done", response_id, item_id, output_index, text=text)


def arguments_deltas(response_id: str, item_id: str, output_index: int, call: ToolCall) -> list[dict[str, Any]]:
    """`response.function_call_arguments.delta` events whose deltas join to the (validated) arguments."""
    text = call.arguments
    return [_event("response.function_call_arguments.delta", response_id=response_id, item_id=item_id,
                   output_index=output_index, call_id=call.call_id, delta=text[i:i + ARGUMENT_DELTA_CHARS])
            for i in range(0, len(text), ARGUMENT_DELTA_CHARS)]


def arguments_done(response_id: str, item_id: str, output_index: int, call: ToolCall) -> dict[str, Any]:
    return _event("response.function_call_arguments.done", response_id=response_id, item_id=item_id,
                  output_index=output_index, call_id=call.call_id, name=call.name, arguments=call.arguments)


# ------------------------------------------------------------------------------------------ falante.*
def avatar_frames(response_id: str, item_id: str, fps: int, sample_rate: int,
                  frames: list[dict[str, Any]]) -> dict[str, Any]:
    return _event("falante.avatar.frames", response_id=response_id, item_id=item_id, fps=fps,
                  sample_rate=sample_rate, frames=frames)


def avatar_state(state: str, expression: str = "neutral", *, response_id: str | None = None,
                 item_id: str | None = None) -> dict[str, Any]:
    fields = {k: v for k, v in (("response_id", response_id), ("item_id", item_id)) if v is not None}
    return _event("falante.avatar.state", state=state, expression=expression, **fields)


def response_metrics(response_id: str, language: str | None, latency_ms: dict[str, float], audio_ms: int,
                     end_of_turn: dict[str, Any] | None) -> dict[str, Any]:
    return _event("falante.response.metrics", response_id=response_id, language=language, latency_ms=latency_ms,
                  audio_ms=audio_ms, end_of_turn=end_of_turn)
