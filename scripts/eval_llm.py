"""Portuguese sanity eval of an LLM backend: 20 short pt-BR kiosk questions → speakable pt-BR replies.

Checks per reply: Portuguese (llm.language guard), at most 2 sentences, no markdown/emojis.
Latency per reply: TTFT (first delta), first-sentence latency (llm.sentences), decode tok/s.

    python scripts/eval_llm.py --backend llama-cpp
    python scripts/eval_llm.py --backend vllm [--model bundled:qwen2.5-0.5b-instruct] --json out.json
    python scripts/eval_llm.py --backend openai --base-url http://127.0.0.1:8001/v1
    python scripts/eval_llm.py --backend vllm llama-cpp   # paired: same questions, alternating order (ABBA)
    python scripts/eval_llm.py --backend llama-cpp llama-cpp@bundled:qwen2.5-1.5b-instruct   # BACKEND@MODEL

Paired mode loads every backend in one process and alternates them question by question, so a noisy shared
machine slows both alike; compare backends only from paired runs.
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

from falante.config import ChatSettings, LlamaCppSettings, OpenAISettings, VllmSettings
from falante.types import ChatMessage
from llm.conversation import estimate_tokens
from llm.language import has_markup, is_portuguese, score_language
from llm.sentences import SentenceSplitter

QUESTIONS = [
    "Oi, tudo bem?",
    "Que horas o museu abre?",
    "Onde fica o banheiro?",
    "Quanto custa o ingresso?",
    "Estudante paga meia-entrada?",
    "Posso tirar fotos lá dentro?",
    "Qual é a capital do Brasil?",
    "Você pode me indicar um restaurante aqui perto?",
    "Como eu chego na estação de metrô?",
    "Tem estacionamento no prédio?",
    "Qual é o seu nome?",
    "Vai chover hoje à tarde?",
    "Me conta uma curiosidade sobre o Brasil.",
    "Vocês aceitam cartão de crédito?",
    "Tem wi-fi grátis aqui?",
    "Qual a melhor época para visitar o Rio de Janeiro?",
    "Obrigado pela ajuda!",
    "Você fala inglês?",
    "Quanto é dois mais dois?",
    "Pode me recomendar um livro brasileiro?",
]


def build(args: argparse.Namespace, spec: str):
    """`spec` = BACKEND or BACKEND@MODEL (the model defaults to --model)."""
    backend, _, model = spec.partition("@")
    model = model or args.model
    if backend == "vllm":
        from llm.vllm_engine import VllmLanguageModel

        return VllmLanguageModel(VllmSettings(model=model, max_model_len=1024, max_num_seqs=4,
                                              kv_cache_gib=1, enforce_eager=args.enforce_eager))
    if backend == "llama-cpp":
        from llm.llamacpp import LlamaCppLanguageModel

        return LlamaCppLanguageModel(LlamaCppSettings(model=model, n_ctx=1024, n_threads=args.threads))
    if backend != "openai":
        raise SystemExit(f"unknown backend {backend!r}: vllm | llama-cpp | openai")
    from llm.remote import OpenAICompatLanguageModel

    return OpenAICompatLanguageModel(OpenAISettings(base_url=args.base_url, model=args.model_name))


def count_sentences(text: str) -> int:
    splitter = SentenceSplitter(clause_words=10_000, min_clause_words=10_000)  # sentences only, no clauses
    return len(splitter.push(text) + splitter.flush())


async def ask(llm, question: str, chat: ChatSettings, temperature: float) -> dict:
    messages = [ChatMessage("system", chat.persona), ChatMessage("user", question)]
    splitter = SentenceSplitter()
    t0 = time.perf_counter()
    ttft = first_sentence = None
    parts: list[str] = []
    async for delta in llm.complete(messages, max_tokens=chat.max_tokens, temperature=temperature):
        now = time.perf_counter() - t0
        ttft = now if ttft is None else ttft
        parts.append(delta)
        if first_sentence is None and splitter.push(delta):
            first_sentence = now
    total = time.perf_counter() - t0
    text = "".join(parts)
    if first_sentence is None and text.strip():
        first_sentence = total  # the only sentence ended with the stream
    counter = getattr(llm, "count_tokens", estimate_tokens)
    tokens = counter(text)
    decode_s = total - (ttft or total)
    return {
        "question": question, "reply": text, "tokens": tokens,
        "ttft_s": ttft, "first_sentence_s": first_sentence, "total_s": total,
        "decode_tok_s": (tokens - 1) / decode_s if decode_s > 0 and tokens > 1 else None,
        "portuguese": is_portuguese(text), "language": score_language(text).language,
        "sentences": count_sentences(text), "markup": has_markup(text),
    }


def summarize(rows: list[dict]) -> dict:
    def p50(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return round(statistics.median(values), 3) if values else None

    return {
        "n": len(rows),
        "portuguese": sum(r["portuguese"] for r in rows),
        "le_2_sentences": sum(r["sentences"] <= 2 for r in rows),
        "no_markup": sum(not r["markup"] for r in rows),
        "ttft_p50_s": p50("ttft_s"), "first_sentence_p50_s": p50("first_sentence_s"),
        "total_p50_s": p50("total_s"), "decode_tok_s_p50": p50("decode_tok_s"),
        "reply_tokens_p50": p50("tokens"),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", nargs="+", default=["llama-cpp"],
                        help="vllm | llama-cpp | openai, each optionally @MODEL")
    parser.add_argument("--model", default="bundled:qwen2.5-0.5b-instruct")
    parser.add_argument("--base-url", default="http://127.0.0.1:8001/v1")
    parser.add_argument("--model-name", default="", help="openai backend: served model (default: the first)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy, comparable across backends")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--enforce-eager", action="store_true", help="vllm: skip torch.compile")
    parser.add_argument("--limit", type=int, default=len(QUESTIONS))
    parser.add_argument("--json", type=Path, help="write rows + summary here")
    args = parser.parse_args()

    chat = ChatSettings()
    llms, start_s = {}, {}
    for backend in args.backend:
        llms[backend] = build(args, backend)
        t0 = time.perf_counter()
        await llms[backend].start()
        start_s[backend] = round(time.perf_counter() - t0, 2)
        await ask(llms[backend], "Olá!", chat, args.temperature)  # warm-up: first call pays one-time costs
    rows: dict[str, list[dict]] = {b: [] for b in args.backend}
    for i, question in enumerate(QUESTIONS[: args.limit]):
        for backend in args.backend if i % 2 == 0 else reversed(args.backend):  # ABBA: fair on a busy box
            row = await ask(llms[backend], question, chat, args.temperature)
            rows[backend].append(row)
            flags = ("pt" if row["portuguese"] else f"NOT-PT({row['language']})",
                     f"{row['sentences']} sent", "MARKUP" if row["markup"] else "")
            print(f"{backend} [{row['ttft_s']:.2f}s/{row['first_sentence_s'] or 0:.2f}s] {question} → "
                  f"{row['reply']!r} {' '.join(f for f in flags if f)}", flush=True)
    for llm in llms.values():
        await llm.close()
    summaries = [{"backend": b.partition("@")[0], "model": b.partition("@")[2] or args.model, "start_s": start_s[b],
                  **summarize(rows[b])} for b in args.backend]
    print(json.dumps(summaries, ensure_ascii=False, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summaries": summaries, "rows": rows}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
