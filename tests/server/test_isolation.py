"""Concurrent sessions share the models but nothing else: each gets its own persona and answers."""

import asyncio

from tests.conftest import fake_backends
from tests.fakes import FakeLLM, FakeTTS


def persona_echo(messages) -> str:
    """The fake model answers with the name its system prompt gives it, so cross-talk would show."""
    system = messages[0].content
    name = "Ana" if "Ana" in system else "Bia" if "Bia" in system else "ninguém"
    return f"Eu sou a {name}. Você disse {messages[-1].content}."


async def test_two_sessions_with_different_personas(fake_server, client_for):
    tts = FakeTTS()
    backends = fake_backends(llm=FakeLLM(persona_echo, delay=0.01), tts=tts)
    async with fake_server(backends) as (url, app):
        async def converse(name: str, said: str) -> str:
            async with client_for(url) as c:
                await c.send({"type": "session.update", "session": {"instructions": f"Seu nome é {name}.",
                                                                    "audio": {"output": {"voice": "fake_b"}}}})
                await c.until("session.updated")
                await c.send({"type": "conversation.item.create", "item": {
                    "type": "message", "role": "user", "content": [{"type": "input_text", "text": said}]}})
                await c.send({"type": "response.create"})
                done = await c.until("response.output_audio_transcript.done")
                ids = {e["response_id"] for e in c.of_type("response.output_audio.delta")}
                assert ids == {done["response_id"]}
                return done["transcript"]

        ana, bia = await asyncio.gather(converse("Ana", "banana"), converse("Bia", "laranja"))
    assert ana == "Eu sou a Ana. Você disse banana."
    assert bia == "Eu sou a Bia. Você disse laranja."
    assert tts.loads == 1 and backends.recognizer.loads == 1  # models loaded once, shared by both sessions
