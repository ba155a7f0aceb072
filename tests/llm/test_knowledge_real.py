"""Kiosk knowledge with the real bundled LLM (model tier): an hours question on examples/museu.md, through the
server's prompt path (persona → history → retrieved context), is answered with the file's opening hour."""

from __future__ import annotations

from pathlib import Path

import pytest

from falante.config import ChatSettings, LlamaCppSettings
from llm.conversation import Conversation
from llm.knowledge import KnowledgeBase, fold, with_context

pytest.importorskip("llama_cpp")
pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="session")]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "museu.md"


async def test_the_bundled_model_answers_an_hours_question_from_the_knowledge_file():
    from llm.llamacpp import LlamaCppLanguageModel
    llm = LlamaCppLanguageModel(LlamaCppSettings(model="bundled:qwen2.5-0.5b-instruct", n_ctx=1024))
    await llm.start()
    kb = KnowledgeBase.from_file(EXAMPLE)
    kb.count_tokens_with(llm.count_tokens)
    try:
        question = "Que horas o museu abre no sábado?"
        conv = Conversation(ChatSettings().persona, count_tokens=llm.count_tokens)
        conv.add_user(question)
        messages = with_context(conv.messages(reserve_tokens=kb.max_context_tokens), await kb.acontext(question))
        answer = "".join([d async for d in llm.complete(messages, max_tokens=60, temperature=0.0)])
    finally:
        await llm.close()
        kb.close()
    # the file says 9 to 18 on Saturdays; the model never saw it anywhere else
    assert any(word in fold(answer) for word in ("9 horas", "9h", "nove horas", "9:00", "às 9")), answer
