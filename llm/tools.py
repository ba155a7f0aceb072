"""Function calling shared by every backend: argument validation, the constrained-call schema, ids, limits.

Why one place: each backend makes calls natively (grammar, guided decoding, a remote API), but what counts as a
valid call — a known tool, a JSON object that validates against the tool's `parameters` — is the same for all,
and the server checks it again before anything reaches the client.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from falante.types import ToolCall, ToolChoice, ToolSpec

MAX_CALLS_PER_RESPONSE = 4  # calls one response may make (a runaway model stops here; docs/protocol.md)
TOOL_CHOICES = ("auto", "none", "required")


def new_call_id() -> str:
    return f"call_{secrets.token_hex(8)}"


def check_schema(parameters: Any) -> str | None:
    """None if `parameters` is a usable JSON schema for a function's arguments, else why not."""
    if not isinstance(parameters, dict):
        return "parameters must be a JSON schema object"
    if parameters.get("type", "object") != "object":
        return "parameters must describe an object (\"type\": \"object\")"
    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError as exc:
        return f"parameters is not a valid JSON schema: {exc.message}"
    return None


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def validation_error(call: ToolCall, tools: Sequence[ToolSpec], tool_choice: ToolChoice = "auto") -> str | None:
    """None if `call` names an offered tool (the chosen one, if named) and its arguments validate; else why not."""
    tool = next((t for t in tools if t.name == call.name), None)
    if tool is None:
        return f"the model called {call.name!r}, which is not an offered tool"
    if tool_choice not in TOOL_CHOICES and call.name != tool_choice:
        return f"the model called {call.name!r} but tool_choice asks for {tool_choice!r}"
    try:
        arguments = json.loads(call.arguments)
    except ValueError as exc:
        return f"the arguments of {call.name!r} are not JSON: {exc}"
    if not isinstance(arguments, dict):
        return f"the arguments of {call.name!r} are not a JSON object"
    error = next(iter(_validator(json.dumps(tool.parameters, sort_keys=True)).iter_errors(arguments)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return f"the arguments of {call.name!r} do not match its schema at {where}: {error.message}"
    return None


def offered(tools: Sequence[ToolSpec], tool_choice: ToolChoice) -> tuple[ToolSpec, ...]:
    """The tools the model may call under `tool_choice` (none for "none", the named one for a name)."""
    if tool_choice == "none":
        return ()
    if tool_choice in TOOL_CHOICES:
        return tuple(tools)
    return tuple(t for t in tools if t.name == tool_choice)


def call_schema(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """JSON schema of one Hermes/Qwen call body `{"name": …, "arguments": {…}}` for any of `tools`.

    A backend constrains decoding to it (llama.cpp grammar, vLLM guided JSON), so a call it makes always parses
    and validates: the name is one of the tools and the arguments follow that tool's own schema.
    """
    options = [{"type": "object", "properties": {"name": {"const": t.name}, "arguments": t.parameters},
                "required": ["name", "arguments"], "additionalProperties": False} for t in tools]
    return options[0] if len(options) == 1 else {"anyOf": options}


def call_opening_ids(vocab_size: int, piece: Callable[[int], str | bytes], marker: int | None) -> list[int]:
    """Token ids a reply that may not call is barred from: the `<tool_call>` marker and every token with a "{" (a
    spoken reply has no braces). Small models imitate the calls in their history as text otherwise (measured: the
    0.5B spoke `{"name": "consultar_horario", …}` after the tool's output). ~1 s for Qwen's 151k tokens: off the
    event loop, once per model."""
    ids = [i for i in range(vocab_size) if "{" in (p if isinstance(p := piece(i), str) else p.decode("latin-1"))]
    return [*ids, *([marker] if marker is not None else [])]


def opens_call(text: str) -> bool:
    """The model's first words open a call: its `<tool_call>` marker, or (small models often skip the marker) a bare
    JSON object — a spoken reply never starts with "{"."""
    return text.lstrip().startswith(("{", "<tool_call>"))


def parse_call_body(text: str) -> ToolCall:
    """A `{"name": …, "arguments": {…}}` body (the chat template's tool-call format) as a ToolCall."""
    body = json.loads(text)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise ValueError(f"not a tool call: {text[:80]!r}")  # noqa: TRY004 — callers catch ValueError (bad JSON too)
    arguments = body.get("arguments", {})
    return ToolCall(new_call_id(), body["name"],
                    arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False))


def openai_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Chat-completions / chat-template shape: `[{"type": "function", "function": {name, description, parameters}}]`."""
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.parameters}} for t in tools]
