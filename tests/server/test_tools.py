"""Function calling through the official `openai` SDK (fast tier: scripted FakeLLM, real server and websocket)."""

import asyncio
import itertools
import json

import jsonschema
import numpy as np

from falante.types import ChatMessage
from tests.conftest import dev_clip, fake_backends
from tests.fakes import FakeLLM
from tests.sdk_client import sdk_client

HORARIO = {"type": "function", "name": "consultar_horario", "description": "Horário de funcionamento de um local.",
           "parameters": {"type": "object", "properties": {"local": {"type": "string"},
                                                           "dia": {"type": "string", "enum": ["hoje", "amanha"]}},
                          "required": ["local"], "additionalProperties": False}}
PRECO = {"type": "function", "name": "consultar_preco", "description": "Preço de um ingresso ou produto.",
         "parameters": {"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]}}


def answer_from_output(messages):
    """The scripted model speaks the tool's output back (as a grounded model would)."""
    last = messages[-1]
    return f"O museu abre {last.content}." if last.role == "tool" else "Posso ajudar com mais alguma coisa?"


def call_horario(messages, tools):
    if messages[-1].role == "user" and "horas" in messages[-1].content and tools:
        return [("consultar_horario", {"local": "museu"})]
    return None


async def _collect(conn, until="response.done"):
    seen = []
    async with asyncio.timeout(20):
        async for event in conn:
            seen.append(event)
            if event.type == until:
                return seen
    return seen


async def _ask(conn, text):
    await conn.conversation.item.create(item={"type": "message", "role": "user",
                                              "content": [{"type": "input_text", "text": text}]})
    await conn.response.create()
    return await _collect(conn)


async def test_tool_round_trip_through_the_sdk(fake_server):
    llm = FakeLLM(answer_from_output, calls=call_horario)
    async with fake_server(fake_backends(llm=llm)) as (url, _app):
        async with sdk_client(url.split("/")[2]).realtime.connect(model="falante") as conn:
            await conn.session.update(session={"type": "realtime", "tools": [HORARIO, PRECO],
                                               "tool_choice": "auto"})
            updated = await _collect(conn, "session.updated")
            first = await _ask(conn, "Que horas vocês abrem?")
            done = next(e for e in first if e.type == "response.function_call_arguments.done")
            await conn.conversation.item.create(item={"type": "function_call_output", "call_id": done.call_id,
                                                      "output": "às nove horas"})
            await conn.response.create()
            second = await _collect(conn)
    assert [t.name for t in updated[-1].session.tools] == ["consultar_horario", "consultar_preco"]
    kinds = [e.type for e in first]
    order = ["response.created", "response.output_item.added", "response.function_call_arguments.delta",
             "response.function_call_arguments.done", "response.output_item.done", "response.done"]
    assert all(kinds.index(a) < kinds.index(b) for a, b in itertools.pairwise(order)), kinds
    assert "response.output_audio.delta" not in kinds  # a pure call says nothing
    added = next(e for e in first if e.type == "response.output_item.added")
    assert added.item.type == "function_call" and added.item.status == "in_progress"
    deltas = "".join(e.delta for e in first if e.type == "response.function_call_arguments.delta")
    assert done.name == "consultar_horario" and deltas == done.arguments
    jsonschema.validate(json.loads(done.arguments), HORARIO["parameters"])
    response = first[-1].response
    assert response.status == "completed"
    assert [(o.type, o.call_id, o.name) for o in response.output] == [("function_call", done.call_id,
                                                                        "consultar_horario")]
    # the answer: the model saw the call and its output, and its words use the output
    transcript = next(e for e in second if e.type == "response.output_audio_transcript.done").transcript
    assert transcript == "O museu abre às nove horas."
    prompt = llm.requests[-1]
    assert prompt[-2].role == "assistant" and prompt[-2].tool_calls[0].call_id == done.call_id
    assert prompt[-1] == ChatMessage("tool", "às nove horas", tool_call_id=done.call_id)
    assert any(e.type == "response.output_audio.delta" for e in second)


async def test_tool_choice_none_never_calls_and_named_choice_forces_the_tool(fake_server):
    llm = FakeLLM("Abrimos às nove.", calls=call_horario)
    async with fake_server(fake_backends(llm=llm)) as (url, _app):
        async with sdk_client(url.split("/")[2]).realtime.connect(model="falante") as conn:
            await conn.session.update(session={"type": "realtime", "tools": [HORARIO, PRECO], "tool_choice": "none",
                                               "output_modalities": ["text"]})
            none = await _ask(conn, "Que horas vocês abrem?")
            await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                      "content": [{"type": "input_text", "text": "E o ingresso?"}]})
            await conn.response.create(response={"tool_choice": {"type": "function", "name": "consultar_preco"}})
            named = await _collect(conn)
    assert not any(e.type.startswith("response.function_call") for e in none)
    assert next(e for e in none if e.type == "response.output_text.done").text == "Abrimos às nove."
    assert llm.tool_requests[0][1] == "none"
    done = next(e for e in named if e.type == "response.function_call_arguments.done")
    assert done.name == "consultar_preco"
    jsonschema.validate(json.loads(done.arguments), PRECO["parameters"])


async def test_several_calls_in_one_response(fake_server):
    llm = FakeLLM("ok", calls=lambda m, t: [("consultar_horario", {"local": "museu"}),
                                            ("consultar_preco", {"item": "entrada"})])
    async with fake_server(fake_backends(llm=llm)) as (url, _app):
        async with sdk_client(url.split("/")[2]).realtime.connect(model="falante") as conn:
            await conn.session.update(session={"type": "realtime", "tools": [HORARIO, PRECO]})
            events = await _ask(conn, "Horário e preço, por favor")
            calls = [e for e in events if e.type == "response.function_call_arguments.done"]
            for i, call in enumerate(calls):
                await conn.conversation.item.create(item={"type": "function_call_output", "call_id": call.call_id,
                                                          "output": f"resultado {i}"})
            await conn.response.create()
            await _collect(conn)
    assert [c.name for c in calls] == ["consultar_horario", "consultar_preco"]
    assert [c.output_index for c in calls] == [0, 1]
    output = events[-1].response.output
    assert [o.name for o in output] == ["consultar_horario", "consultar_preco"]
    prompt = llm.requests[-1]
    assert len(prompt[-3].tool_calls) == 2  # one assistant message with both calls, then both outputs
    assert [m.tool_call_id for m in prompt[-2:]] == [c.call_id for c in calls]


async def test_invalid_arguments_are_retried_then_apologised_never_sent(fake_server, client_for):
    attempts = []

    def bad(messages, tools):
        attempts.append(1)
        return [("consultar_horario", {"lugar": 3})]  # wrong property, wrong type: fails the schema

    llm = FakeLLM("nunca", calls=bad)
    async with fake_server(fake_backends(llm=llm)) as (url, _app), client_for(url) as c:
        await c.send({"type": "session.update", "session": {"tools": [HORARIO], "output_modalities": ["text"]}})
        await c.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Que horas?"}]}})
        await c.send({"type": "response.create"})
        done = await c.until("response.done")
    assert len(attempts) == 2  # asked once more, then gave up
    assert not any(e["type"].startswith("response.function_call") for e in c.events)
    error = c.of_type("error")[0]["error"]
    assert error["code"] == "invalid_tool_call" and "consultar_horario" in error["message"]
    assert c.of_type("response.output_text.done")[0]["text"] == "Desculpe, não consegui fazer isso agora."
    assert done["response"]["status"] == "completed"
    assert [o["type"] for o in done["response"]["output"]] == ["message"]


async def test_unknown_tool_and_bad_schema_and_unknown_call_id_are_clear_errors(fake_server, client_for):
    async with fake_server(fake_backends()) as (url, _app), client_for(url) as c:
        await c.send({"type": "session.update", "session": {"tools": [
            {"type": "function", "name": "x", "parameters": {"type": "object", "properties": {"a": {"type": 5}}}}]}})
        bad_schema = await c.until("error")
        await c.send({"type": "session.update", "session": {"tools": [HORARIO],
                                                            "tool_choice": {"type": "function", "name": "nope"}}})
        bad_choice = await c.until("error")
        await c.send({"type": "conversation.item.create", "item": {"type": "function_call_output",
                                                                   "call_id": "call_unknown", "output": "x"}})
        bad_call = await c.until("error")
        await c.send({"type": "session.update", "session": {"tools": [HORARIO], "tool_choice": "sometimes"}})
        bad_literal = await c.until("error")
    assert bad_schema["error"]["param"] == "session.tools[0].parameters"
    assert bad_choice["error"]["param"] == "session.tool_choice.name"
    assert bad_call["error"]["param"] == "item.call_id"
    assert bad_literal["error"]["param"] == "session.tool_choice"


async def test_barge_in_while_the_model_is_making_a_call(fake_server):
    """Speech during a call's decoding cancels the response as for speech: nothing of the call goes out or stays."""
    llm = FakeLLM("Claro.", calls=lambda m, t: [("consultar_horario", {"local": "museu"})] if t and len(
        [x for x in m if x.role == "user"]) == 1 else None, call_delay=30.0)
    speech = np.concatenate([dev_clip("d03_jf_alpha.wav"), np.zeros(12_000, np.float32)])
    async with fake_server(fake_backends(llm=llm)) as (url, _app):
        async with sdk_client(url.split("/")[2]).realtime.connect(model="falante") as conn:
            await conn.session.update(session={"type": "realtime", "tools": [HORARIO]})
            await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                      "content": [{"type": "input_text", "text": "Que horas?"}]})
            await conn.response.create()
            await _collect(conn, "response.created")
            import base64

            from falante.audio import float_to_pcm16_bytes
            for i in range(0, len(speech), 2400):
                await conn.input_audio_buffer.append(audio=base64.b64encode(
                    float_to_pcm16_bytes(speech[i:i + 2400])).decode())
            events = await _collect(conn)
            events += await _collect(conn)  # the reply to the barge-in
    cancelled = next(e for e in events if e.type == "response.done")
    assert cancelled.response.status == "cancelled"
    assert cancelled.response.status_details.reason == "turn_detected"
    assert not any(e.type.startswith("response.function_call") for e in events)
    assert llm.aborted >= 1
    assert events[-1].response.status == "completed"
    assert not any(m.tool_calls for m in llm.requests[-1])  # the cancelled call is not in the history


async def test_fake_llm_tool_contract_matches_the_protocol():
    """The fake obeys tool_choice as the real backends do (tests/test_contract.py runs the same on real ones)."""
    from falante.types import ToolCall, ToolSpec
    from llm.tools import validation_error

    tools = [ToolSpec(HORARIO["name"], "", HORARIO["parameters"])]
    llm = FakeLLM("texto")
    msgs = [ChatMessage("user", "oi")]
    named = [x async for x in llm.complete(msgs, tools=tools, tool_choice="consultar_horario")]
    assert len(named) == 1 and isinstance(named[0], ToolCall) and validation_error(named[0], tools) is None
    assert not any(isinstance(x, ToolCall) for x in [x async for x in llm.complete(msgs, tools=tools,
                                                                                   tool_choice="none")])
