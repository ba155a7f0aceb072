"""One tool check that both real in-process backends (llama.cpp, vLLM) must pass."""

from __future__ import annotations

from falante.config import ChatSettings
from falante.types import ChatMessage, LanguageModel, ToolCall, ToolSpec
from llm.tools import validation_error

HORARIO = ToolSpec("consultar_horario", "Consulta o horário de funcionamento de um local.",
                   {"type": "object", "properties": {"local": {"type": "string"}}, "required": ["local"]})


async def calls_then_answers_without_writing_a_call(llm: LanguageModel) -> None:
    """A named tool gives one valid call; the reply after the tool's output may not call, and its braces are barred
    (the 0.5B otherwise writes the call again as text, which the server would speak)."""
    messages = [ChatMessage("system", ChatSettings().persona), ChatMessage("user", "Que horas o museu abre hoje?")]
    named = [x async for x in llm.complete(messages, max_tokens=48, temperature=0.0, tools=[HORARIO],
                                           tool_choice="consultar_horario")]
    calls = [x for x in named if isinstance(x, ToolCall)]
    assert len(calls) == 1 and validation_error(calls[0], [HORARIO]) is None, named
    after = [*messages, ChatMessage("assistant", "", tool_calls=(calls[0],)),
             ChatMessage("tool", "O museu abre às 9 horas.", tool_call_id=calls[0].call_id)]
    reply = "".join([x async for x in llm.complete(after, max_tokens=40, temperature=0.0, tools=[HORARIO],
                                                    tool_choice="none")])
    assert reply.strip() and "{" not in reply and "tool_call" not in reply, reply
