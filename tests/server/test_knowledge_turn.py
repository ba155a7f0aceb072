"""Kiosk knowledge through the real websocket server with a fake LLM (fast tier): the section retrieved for a
user turn reaches that turn's prompt only — never the persisted history nor a later turn's prompt — and the
prompt stays within the history token budget."""

from __future__ import annotations

from pathlib import Path

from llm.conversation import MESSAGE_OVERHEAD_TOKENS, estimate_tokens
from llm.knowledge import NO_FACTS, KnowledgeBase
from tests.conftest import fake_backends, fast_settings
from tests.fakes import FakeLLM

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "museu.md"
BATHROOM_FACT = "Os banheiros ficam no térreo"


async def ask(c, text: str) -> None:
    await c.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})
    await c.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    await c.until("response.done")


async def test_retrieved_section_reaches_that_turns_prompt_and_not_the_history(fake_server, client_for):
    llm = FakeLLM("Fica no térreo, ao lado da bilheteria.")
    backends = fake_backends(llm=llm)
    backends.knowledge = KnowledgeBase.from_file(EXAMPLE, max_context_tokens=300)
    settings = fast_settings(chat__history_tokens=600)
    async with fake_server(backends, settings) as (url, _app), client_for(url) as c:
        await ask(c, "Onde fica o banheiro?")
        llm.reply = "A capital do Brasil é Brasília."
        await ask(c, "Qual é a capital do Brasil?")
        for _ in range(6):  # enough history to press on the budget
            await ask(c, "Me conta mais uma coisa sobre a cidade de São Paulo e a sua história " * 3)
        await ask(c, "Quanto custa a entrada?")
    first, second, last = llm.requests[0], llm.requests[1], llm.requests[-1]
    # turn 1: the bathroom section is in its system prompt, after the persona; the user's words are unchanged
    assert first[0].role == "system" and BATHROOM_FACT in first[0].content
    assert first[0].content.startswith(settings.chat.persona)
    assert first[-1].content == "Onde fica o banheiro?"
    # turn 2: an unrelated question gets no section, and turn 1's section is nowhere in its prompt
    assert all(BATHROOM_FACT not in m.content for m in second)
    assert NO_FACTS in second[0].content
    assert [m.role for m in second[1:]] == ["user", "assistant", "user"]
    # the last turn got its own section, and its whole prompt fits the history budget
    assert "20 reais" in last[0].content and all(BATHROOM_FACT not in m.content for m in last)
    assert sum(estimate_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in last) <= 600
    assert len(last) < 2 + 2 * 9  # older turns left out of this prompt to make room for the context
    backends.knowledge.close()


async def test_without_a_knowledge_file_the_prompt_is_the_persona_alone(fake_server, client_for):
    llm = FakeLLM("Oi!")
    settings = fast_settings()
    async with fake_server(fake_backends(llm=llm), settings) as (url, _app), client_for(url) as c:
        await ask(c, "Onde fica o banheiro?")
    assert llm.requests[0][0].content == settings.chat.persona
