"""Input checks shared by every backend, so bad input is a clear `LLMError`, never a crash deep in an engine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from falante.types import ChatMessage
from llm.errors import LLMError

ROLES = frozenset({"system", "user", "assistant", "tool"})


def validate_messages(messages: Sequence[ChatMessage]) -> Sequence[ChatMessage]:
    """Non-empty, known roles, string contents; returns `messages` unchanged."""
    if not messages:
        raise LLMError("no messages to complete", code="invalid_request")
    for i, m in enumerate(messages):
        if m.role not in ROLES:
            raise LLMError(f"message {i} has unknown role {m.role!r} (use system/user/assistant/tool)",
                           code="invalid_request")
        if not isinstance(m.content, str):
            raise LLMError(f"message {i} content must be text, got {type(m.content).__name__}",
                           code="invalid_request")
    return messages


def has_tool_turns(messages: Sequence[ChatMessage]) -> bool:
    return any(m.tool_calls or m.role == "tool" for m in messages)


def as_dicts(messages: Sequence[ChatMessage], *, arguments_as_text: bool = False) -> list[dict[str, Any]]:
    """OpenAI-style chat dicts, the shape chat templates and HTTP APIs take.

    Tool calls: chat templates (Qwen/Hermes) render `arguments` with `tojson`, so they get an object; the HTTP
    chat-completions API takes the JSON text (`arguments_as_text`).
    """
    out: list[dict[str, Any]] = []
    for m in validate_messages(messages):
        d: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            d["tool_calls"] = [{"id": c.call_id, "type": "function", "function": {
                "name": c.name, "arguments": c.arguments if arguments_as_text else _object(c.arguments)}}
                for c in m.tool_calls]
        if m.role == "tool":
            d["tool_call_id"] = m.tool_call_id or ""
        out.append(d)
    return out


def _object(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
