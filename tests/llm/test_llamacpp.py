"""llama.cpp backend with the real bundled Qwen2.5-Coder-0.5B-Instruct GGUF."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import pytest_asyncio

from falante.config import ChatSettings, LlamaCppSettings
from falante.types import ChatMessage, LanguageModel
from llm.errors import LLMError
from llm.language import is_portuguese
from llm.llamacpp import LlamaCppLanguageModel
from tests.llm.tool_checks import calls_then_answers_without_writing_a_call

pytest.importorskip("llama_cpp")
pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="session")]
PERSONA = ChatSettings().persona


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def llm():
    model = LlamaCppLanguageModel(LlamaCppSettings(model="bundled:qwen2.5-0.5b-instruct", n_ctx=512))
    await model.start()
    yield model
    await model.close()


@pytest.mark.parametrize("threads", [2, 1])
async def test_streams_a_portuguese_answer(llm, threads):
    """Greedy, with 2 and 1 threads: llama.cpp splits its matrix work by thread count, so the sums (and on another
    CPU the kernels) differ. Both give a Portuguese answer naming Brasília (scripts/bench_gates.py)."""
    model = llm
    if threads != llm.settings.n_threads:
        model = LlamaCppLanguageModel(llm.settings.model_copy(update={"n_threads": threads}))
        await model.start()
    assert isinstance(model, LanguageModel)
    messages = [ChatMessage("system", PERSONA), ChatMessage("user", "Qual é a capital do Brasil?")]
    deltas = [d async for d in model.complete(messages, max_tokens=40, temperature=0.0)]
    text = "".join(deltas)
    if model is not llm:
        await model.close()
    assert len(deltas) > 2
    assert "Bras" in text and is_portuguese(text), text
    assert 0 < llm.count_tokens(text) <= 40


async def test_cancel_stops_decoding_within_a_token(llm):
    messages = [ChatMessage("system", "Responda longamente."), ChatMessage("user", "Conte a história do Brasil.")]
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.complete(messages, max_tokens=400, temperature=0.0):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    assert llm.generating == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the cancelled task returns at once; the worker stops at its next token: counted in tokens, not wall time
    # (one token can take a second on a loaded CI machine; a hang is caught by pytest-timeout)
    at_cancel = llm.deltas_decoded
    while llm.generating:
        await asyncio.sleep(0.02)
    assert llm.deltas_decoded - at_cancel <= 1, "the worker must stop at the token it was decoding"


async def test_a_consumer_that_stops_reading_pauses_the_worker(llm):
    """Backpressure: the turn stops reading while its first audio is synthesized, and the CPU goes to the TTS."""
    from llm.llamacpp import TOKEN_BUFFER

    messages = [ChatMessage("system", "Responda longamente."), ChatMessage("user", "Conte a história do Brasil.")]
    stream = llm.complete(messages, max_tokens=200, temperature=0.0)
    before = llm.deltas_decoded
    first = await anext(stream)
    await asyncio.sleep(1.0)  # ~20-40 tokens of decoding time on 2 cores
    assert llm.deltas_decoded - before <= 1 + TOKEN_BUFFER
    rest = [d async for d in stream]  # reading again resumes it
    assert llm.deltas_decoded - before == 1 + len(rest) and len(rest) > TOKEN_BUFFER
    assert first


async def test_a_paused_reply_does_not_hold_the_worker_from_another_session(llm):
    """Fairness: A stops reading (its voice is slow), B asks: A decodes on to its end without waiting for its
    consumer, so B's first token comes after A's decode time, not after A's whole speech."""
    messages = [ChatMessage("system", "Responda longamente."), ChatMessage("user", "Conte a história do Brasil.")]
    async with contextlib.aclosing(llm.complete(messages, max_tokens=60, temperature=0.0)) as a:
        await anext(a)  # A is paused, holding the single worker
        b = llm.complete([ChatMessage("user", "Diga oi.")], max_tokens=4, temperature=0.0)
        async with contextlib.aclosing(b), asyncio.timeout(120):  # a hang bound: B used to wait for A's reader
            assert await anext(b)
            async for _ in b:  # B runs to its end
                pass
        assert llm.queued == 0
        assert len([d async for d in a]) >= 8  # A's reply is whole, decoded ahead while B waited


async def test_sessions_queue_on_the_single_context(llm):
    async def ask(question: str) -> str:
        return "".join([d async for d in llm.complete([ChatMessage("user", question)], max_tokens=12, temperature=0.0)])

    first, second = await asyncio.gather(ask("Diga oi."), ask("Diga tchau."))
    assert first and second


async def test_prompt_over_the_context_is_a_clear_error(llm):
    with pytest.raises(LLMError) as err:
        [d async for d in llm.complete([ChatMessage("user", "palavra " * 800)], max_tokens=8)]
    assert err.value.code == "context_length_exceeded"
    assert [d async for d in llm.complete([ChatMessage("user", "Oi")], max_tokens=4, temperature=0.0)]  # still serving


async def test_bad_references_fail_at_start(tmp_path):
    with pytest.raises(LLMError, match="gguf"):
        await LlamaCppLanguageModel(LlamaCppSettings(model=str(tmp_path / "missing.gguf"))).start()
    with pytest.raises(LLMError, match="unknown bundled model"):
        await LlamaCppLanguageModel(LlamaCppSettings(model="bundled:nope")).start()


async def test_calls_a_named_tool_then_answers_without_writing_a_call(llm):
    await calls_then_answers_without_writing_a_call(llm)
