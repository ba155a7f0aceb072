"""Concurrency benchmark of an LLM backend: N sessions asking at once → TTFT p50/max and aggregate tok/s.

Why: one session's latency says little about a server; vLLM batches concurrent sessions while llama.cpp queues
them on one context. Same prompts, greedy decoding, fixed reply length (max_tokens).

    python scripts/bench_llm.py --backend vllm --sessions 1 2 4
    python scripts/bench_llm.py --backend llama-cpp --sessions 1 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from falante.config import ChatSettings, LlamaCppSettings, VllmSettings
from falante.types import ChatMessage

QUESTIONS = ["Que horas o museu abre?", "Quanto custa o ingresso?", "Onde fica o banheiro?",
             "Tem estacionamento no prédio?", "Posso tirar fotos lá dentro?", "Vocês aceitam cartão?",
             "Como chego ao metrô?", "Qual é o seu nome?"]


def build(args: argparse.Namespace):
    if args.backend == "llama-cpp":
        from llm.llamacpp import LlamaCppLanguageModel

        return LlamaCppLanguageModel(LlamaCppSettings(model=args.model, n_ctx=1024))
    from llm.vllm_engine import VllmLanguageModel

    settings = VllmSettings(model=args.model, max_model_len=1024, max_num_seqs=8, kv_cache_gib=1, dtype=args.dtype,
                            enforce_eager=args.enforce_eager)
    return VllmLanguageModel(settings)


async def run_round(llm, sessions: int, max_tokens: int, persona: str) -> dict:
    async def one(i: int) -> tuple[float, int]:
        messages = [ChatMessage("system", persona), ChatMessage("user", QUESTIONS[i % len(QUESTIONS)])]
        t0 = time.perf_counter()
        ttft = None
        text = []
        async for delta in llm.complete(messages, max_tokens=max_tokens, temperature=0.0):
            ttft = ttft if ttft is not None else time.perf_counter() - t0
            text.append(delta)
        return ttft or 0.0, llm.count_tokens("".join(text))

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(sessions)))
    wall = time.perf_counter() - t0
    ttfts = [r[0] for r in results]
    tokens = sum(r[1] for r in results)
    return {"sessions": sessions, "ttft_p50_s": round(statistics.median(ttfts), 3),
            "ttft_max_s": round(max(ttfts), 3), "tokens": tokens, "wall_s": round(wall, 2),
            "aggregate_tok_s": round(tokens / wall, 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["vllm", "llama-cpp"], default="vllm")
    parser.add_argument("--model", default="bundled:qwen2.5-0.5b-instruct")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--enforce-eager", action="store_true")
    parser.add_argument("--dtype", default="auto", help="vllm: auto (bfloat16 here) | float32")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    llm = build(args)
    t0 = time.perf_counter()
    await llm.start()
    start_s = time.perf_counter() - t0
    persona = ChatSettings().persona
    await run_round(llm, 1, 8, persona)  # warm-up
    rounds = [await run_round(llm, n, args.max_tokens, persona) for n in args.sessions]
    await llm.close()
    report = {"backend": args.backend, "model": args.model, "enforce_eager": args.enforce_eager, "dtype": args.dtype,
              "start_s": round(start_s, 1), "rounds": rounds}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
