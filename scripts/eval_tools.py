"""Tool-calling accuracy of an LLM backend on pt-BR kiosk requests (not a test; figures for docs/benchmarks.md).

30 requests: 20 that should call one of 3 example tools (consultar_horario, consultar_preco, chamar_atendente) and
10 that should not call any. Per backend: right calls (right tool, arguments valid against its JSON schema, and
the expected argument value where one is clear), false-call rate on the 10, wrong/invalid calls, latency to the
call (or to the end of the text reply). Greedy decoding, tool_choice "auto", the persona from [chat].

    python scripts/eval_tools.py --backend llama-cpp --json docs/bench/tools.json
    python scripts/eval_tools.py --backend llama-cpp llama-cpp@bundled:qwen2.5-1.5b-instruct vllm
Targets (issue 13): >= 90 % right calls, <= 10 % false calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from falante.config import ChatSettings, LlamaCppSettings, VllmSettings
from falante.types import ChatMessage, ToolCall, ToolSpec
from llm.tools import validation_error

TOOLS = [
    ToolSpec("consultar_horario", "Consulta o horário de funcionamento de um local ou serviço do prédio.",
             {"type": "object", "properties": {
                 "local": {"type": "string", "description": "o local ou serviço, por exemplo museu, loja, café"},
                 "dia": {"type": "string", "description": "o dia da semana ou 'hoje'"}},
              "required": ["local"], "additionalProperties": False}),
    ToolSpec("consultar_preco", "Consulta o preço de um ingresso, produto ou serviço.",
             {"type": "object", "properties": {
                 "item": {"type": "string", "description": "o ingresso, produto ou serviço"}},
              "required": ["item"], "additionalProperties": False}),
    ToolSpec("chamar_atendente", "Chama uma pessoa da equipe para atender o visitante pessoalmente.",
             {"type": "object", "properties": {
                 "motivo": {"type": "string", "description": "por que o visitante precisa de uma pessoa"}},
              "required": ["motivo"], "additionalProperties": False}),
]

# (request, expected tool or None, a word the main argument should contain or None)
CASES: list[tuple[str, str | None, str | None]] = [
    ("Que horas o museu abre hoje?", "consultar_horario", "museu"),
    ("Até que horas a loja fica aberta?", "consultar_horario", "loja"),
    ("O café funciona no domingo?", "consultar_horario", "caf"),
    ("Qual é o horário da biblioteca?", "consultar_horario", "biblioteca"),
    ("A bilheteria abre a que horas amanhã?", "consultar_horario", "bilheteria"),
    ("Quando fecha o restaurante?", "consultar_horario", "restaurante"),
    ("O estacionamento fica aberto até tarde?", "consultar_horario", "estacionamento"),
    ("Quanto custa o ingresso do museu?", "consultar_preco", "ingresso"),
    ("Qual é o preço da meia-entrada?", "consultar_preco", "meia"),
    ("Quanto é o estacionamento por hora?", "consultar_preco", "estacionamento"),
    ("Quanto custa o audioguia?", "consultar_preco", "audioguia"),
    ("Qual o valor do café com pão de queijo?", "consultar_preco", "caf"),
    ("Quanto sai a visita guiada?", "consultar_preco", "visita"),
    ("Qual é o preço da camiseta da loja?", "consultar_preco", "camiseta"),
    ("Preciso falar com um atendente, por favor.", "chamar_atendente", None),
    ("Perdi minha carteira, alguém pode me ajudar?", "chamar_atendente", None),
    ("Quero fazer uma reclamação com uma pessoa da equipe.", "chamar_atendente", None),
    ("Estou passando mal, chama alguém!", "chamar_atendente", None),
    ("Meu filho se perdeu, preciso de ajuda de um funcionário.", "chamar_atendente", None),
    ("Pode chamar alguém para me ajudar com a cadeira de rodas?", "chamar_atendente", None),
    ("Oi, tudo bem?", None, None),
    ("Qual é o seu nome?", None, None),
    ("Obrigado pela ajuda!", None, None),
    ("Qual é a capital do Brasil?", None, None),
    ("Quanto é dois mais dois?", None, None),
    ("Me conta uma curiosidade sobre o Brasil.", None, None),
    ("Você fala inglês?", None, None),
    ("Bom dia!", None, None),
    ("Tchau, até logo.", None, None),
    ("Pode me recomendar um livro brasileiro?", None, None),
]


def fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def build(spec: str, args: argparse.Namespace):
    backend, _, model = spec.partition("@")
    model = model or args.model
    if backend == "vllm":
        from llm.vllm_engine import VllmLanguageModel

        return VllmLanguageModel(VllmSettings(model=model, max_model_len=2048, max_num_seqs=4, kv_cache_gib=1))
    if backend == "llama-cpp":
        from llm.llamacpp import LlamaCppLanguageModel

        return LlamaCppLanguageModel(LlamaCppSettings(model=model, n_ctx=2048, n_threads=args.threads))
    raise SystemExit(f"unknown backend {backend!r}: llama-cpp | vllm")


async def ask(llm, persona: str, request: str, max_tokens: int) -> dict:
    messages = [ChatMessage("system", persona), ChatMessage("user", request)]
    t0 = time.perf_counter()
    calls: list[ToolCall] = []
    text = ""
    async for item in llm.complete(messages, max_tokens=max_tokens, temperature=0.0, tools=TOOLS, tool_choice="auto"):
        if isinstance(item, ToolCall):
            calls.append(item)
        else:
            text += item
    return {"calls": calls, "text": text, "seconds": time.perf_counter() - t0}


def judge(case: tuple[str, str | None, str | None], result: dict) -> dict:
    request, tool, word = case
    calls: list[ToolCall] = result["calls"]
    first = calls[0] if calls else None
    valid = first is not None and validation_error(first, TOOLS) is None
    right = bool(tool and first and first.name == tool and valid
                 and (word is None or fold(word) in fold(first.arguments)))
    return {"request": request, "expected": tool, "called": [c.name for c in calls],
            "arguments": [c.arguments for c in calls], "valid": valid, "right": right,
            "false_call": tool is None and bool(calls), "text": result["text"][:120],
            "seconds": round(result["seconds"], 2)}


def summary(spec: str, start_s: float, rows: list[dict]) -> dict:
    should = [r for r in rows if r["expected"]]
    should_not = [r for r in rows if not r["expected"]]
    call_latency = [r["seconds"] for r in should if r["called"]]
    return {
        "backend": spec, "start_s": round(start_s, 1),
        "right_call_rate": round(sum(r["right"] for r in should) / max(1, len(should)), 3),
        "false_call_rate": round(sum(r["false_call"] for r in should_not) / max(1, len(should_not)), 3),
        "invalid_calls": sum(1 for r in rows if r["called"] and not r["valid"]),
        "latency_s": {"call_p50": round(statistics.median(call_latency), 2) if call_latency else None,
                      "all_p50": round(statistics.median(r["seconds"] for r in rows), 2) if rows else None},
        "n_should_call": len(should), "n_should_not": len(should_not), "rows": rows,
    }


def write(path: Path | None, results: list[dict]) -> None:
    """Written after every request, so a long run on a busy machine leaves its figures so far."""
    if path is None:
        return
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "tool_choice": "auto", "temperature": 0.0, "cases": len(CASES), "results": results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n")


async def run_backend(spec: str, args: argparse.Namespace, done: list[dict]) -> dict:
    llm = build(spec, args)
    t0 = time.perf_counter()
    await llm.start()
    start_s = time.perf_counter() - t0
    persona = ChatSettings().persona
    rows = []
    try:
        await ask(llm, persona, "Oi", 8)  # warm-up (the persona's KV prefix)
        for case in CASES[: args.limit or None]:
            rows.append(judge(case, await ask(llm, persona, case[0], args.max_tokens)))
            r = rows[-1]
            print(f"{spec}: {'OK ' if r['right'] or (r['expected'] is None and not r['false_call']) else 'BAD'} "
                  f"{r['seconds']:6.1f}s {r['request']!r} → {r['called']} {r['arguments']} {r['text']!r}",
                  flush=True)
            write(args.json, [*done, summary(spec, start_s, rows)])
    finally:
        await llm.close()
    return summary(spec, start_s, rows)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", nargs="+", default=["llama-cpp"], help="BACKEND or BACKEND@MODEL")
    ap.add_argument("--model", default="bundled:qwen2.5-0.5b-instruct")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--limit", type=int, default=0, help="first N cases only (a quick look)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results: list[dict] = []
    for spec in args.backend:
        results.append(await run_backend(spec, args, results))
        write(args.json, results)
    for r in results:
        print(f"{r['backend']}: right calls {r['right_call_rate']:.0%} of {r['n_should_call']}, false calls "
              f"{r['false_call_rate']:.0%} of {r['n_should_not']}, invalid {r['invalid_calls']}, "
              f"p50 {r['latency_s']}")


if __name__ == "__main__":
    asyncio.run(main())
