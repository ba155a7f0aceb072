"""A tool round trip through the OpenAI Agents SDK (`@function_tool`, RealtimeAgent) against falante (fast tier)."""

import asyncio

import pytest

from tests.conftest import fake_backends
from tests.fakes import FakeLLM

agents = pytest.importorskip("agents")


async def test_agents_sdk_function_tool_round_trip(fake_server):
    from agents import function_tool
    from agents.realtime import RealtimeAgent, RealtimeRunner

    ran: list[str] = []

    @function_tool
    def consultar_horario(local: str) -> str:
        """Consulta o horário de funcionamento de um local."""
        ran.append(local)
        return "às nove horas"

    def calls(messages, tools):
        return [("consultar_horario", {"local": "museu"})] if messages[-1].role == "user" and tools else None

    llm = FakeLLM(lambda m: f"O museu abre {m[-1].content}." if m[-1].role == "tool" else "Oi!", calls=calls)
    agent = RealtimeAgent(name="Falante", instructions="Atenda o visitante.", tools=[consultar_horario])
    events = []
    async with fake_server(fake_backends(llm=llm)) as (url, _app):
        runner = RealtimeRunner(agent, config={"model_settings": {"output_modalities": ["text"], "voice": "fake_a"}})
        session = await runner.run(model_config={"url": url + "?model=falante", "api_key": "local"})
        async with session:
            await session.send_message("Que horas o museu abre?")
            async with asyncio.timeout(30):
                async for event in session:
                    events.append(event)
                    # the SDK reports falante's own `falante.*` events as unparseable (extensions, docs/protocol.md)
                    if event.type == "error" and "falante." not in str(event.error):
                        raise AssertionError(event.error)
                    if event.type == "raw_model_event" and getattr(event.data, "type", "") == "raw_server_event" \
                            and event.data.data.get("type") == "response.output_text.done":
                        break
    assert ran == ["museu"]  # the SDK ran the tool with the model's arguments
    tool_end = next(e for e in events if e.type == "tool_end")
    assert tool_end.output == "às nove horas"
    assert llm.requests[-1][-1].role == "tool" and llm.requests[-1][-1].content == "às nove horas"
