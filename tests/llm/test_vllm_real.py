"""vLLM on CPU with the real bundled Qwen2.5-Coder-0.5B-Instruct (converted once from GGUF to safetensors)."""

from __future__ import annotations

import pytest
import pytest_asyncio

from falante.config import ChatSettings, VllmSettings
from falante.types import ChatMessage
from llm.language import is_portuguese
from llm.vllm_engine import VllmLanguageModel
from tests.llm.tool_checks import calls_then_answers_without_writing_a_call

pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def llm():
    model = VllmLanguageModel(VllmSettings(model="bundled:qwen2.5-0.5b-instruct", max_model_len=512,
                                           max_num_seqs=2, kv_cache_gib=1, enforce_eager=True))
    await model.start()
    yield model
    await model.close()


async def test_answers_in_portuguese_with_the_models_chat_template(llm):
    messages = [ChatMessage("system", ChatSettings().persona), ChatMessage("user", "Qual é a capital do Brasil?")]
    assert "<|im_start|>system" in llm.engine.get_tokenizer().decode(llm.prompt_ids(messages))
    text = "".join([d async for d in llm.complete(messages, max_tokens=16, temperature=0.0)])
    assert "Bras" in text and is_portuguese(text), text


async def test_calls_a_named_tool_then_answers_without_writing_a_call(llm):
    await calls_then_answers_without_writing_a_call(llm)
