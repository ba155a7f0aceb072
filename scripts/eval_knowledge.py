"""Kiosk-knowledge eval (pt-BR, not a test): does the avatar answer from the operator's facts, know general facts,
and admit what the facts file does not say?

52 fixed questions on examples/museu.md: 28 answerable only from the file, 12 general facts, 12 about the museum
that the file does not cover (right answer: "não sei" / an offer to call staff). Each question goes through the
server's own prompt path (persona → Conversation → BM25 retrieval → context in the system prompt of that turn),
greedy. Correct = every expected keyword group matched (accent- and case-insensitive) and, for the first two
kinds, no "não sei" in the answer; an uncovered question is correct when the answer says it does not know or
offers staff, else it counts as invented. Latency: time to first token and to the full answer (the model's
voice-to-voice cost is its time to first token plus the first clause, docs/benchmarks.md).

    python scripts/eval_knowledge.py --json docs/bench/knowledge.json \\
        --model bundled:qwen2.5-0.5b-instruct bundled:qwen2.5-1.5b-instruct

`--persona both` runs the previous default persona and the current one question by question (ABAB) in one run;
`--kinds` runs only some kinds of question.
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from falante.config import ChatSettings, LlamaCppSettings
from llm.conversation import Conversation
from llm.knowledge import KNOWLEDGE_RULES, KnowledgeBase, fold, with_context

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE_FILE = ROOT / "examples" / "museu.md"

# (question, expected keyword groups: each group is any-of, all groups must match, section title word)
KNOWLEDGE = [
    ("Que horas o museu abre?", [["9", "nove"]], "Horário"),
    ("Até que horas fica aberto no domingo?", [["17", "cinco"]], "Horário"),
    ("O museu abre na segunda-feira?", [["fecha", "não abre", "não funciona", "não está aberto", "não"]], "Horário"),
    ("Quanto custa o ingresso?", [["20", "vinte"]], "Preço"),
    ("Quanto é a meia-entrada?", [["10", "dez"]], "Preço"),
    ("Uma criança de cinco anos paga entrada?", [["não paga", "gratuit", "grátis", "de graça", "não precisa",
                                                  "não pagam", "isent", "não"]], "Preço"),
    ("Tem algum dia com entrada gratuita?", [["sábado"]], "Preço"),
    ("Vocês aceitam Pix?", [["sim", "aceit"]], "pagamento"),
    ("Que horas tem visita guiada?", [["11", "onze", "15", "quinze", "três da tarde"]], "Visitas"),
    ("A visita guiada é paga?", [["gratuit", "grátis", "de graça", "não é paga", "não precisa pagar", "não"]],
     "Visitas"),
    ("Qual o e-mail para agendar visita de escola?", [["educativo"]], "Visitas"),
    ("Qual é a exposição temporária?", [["trilhos"]], "Exposições"),
    ("Em que andar fica a exposição principal?", [["primeiro", "1º", "1o andar"]], "Exposições"),
    ("Quanto custa o passeio de trem?", [["15", "quinze"]], "Trem"),
    ("Que dia sai o trem histórico?", [["domingo"]], "Trem"),
    ("Onde fica o banheiro?", [["térreo", "bilheteria", "segundo andar"]], "Banheiros"),
    ("Tem fraldário?", [["sim", "térreo"]], "Banheiros"),
    ("Vocês emprestam cadeira de rodas?", [["sim", "recepção", "gratuit", "emprest"]], "Acessibilidade"),
    ("Tem visita em Libras?", [["sábado"]], "Acessibilidade"),
    ("Onde eu deixo a minha mochila?", [["guarda-volumes", "guarda volumes"]], "Guarda"),
    ("Posso tirar foto com flash?", [["não", "sem flash"]], "Fotografia"),
    ("Posso entrar com o meu cachorro?", [["não", "cães-guia", "cão-guia", "cão guia"]], "Animais"),
    ("Qual é o endereço do museu?", [["visconde", "parnaíba", "1316"]], "Endereço"),
    ("Qual a estação de metrô mais perto?", [["bresser"]], "Endereço"),
    ("Qual o telefone do museu?", [["3456", "7890"]], "Contato"),
    ("Quanto tempo vocês guardam os objetos perdidos?", [["30", "trinta"]], "Achados"),
    ("Que horas a biblioteca abre?", [["10", "dez"]], "Biblioteca"),
    ("Onde fica a cafeteria?", [["jardim"]], "Café"),
]
GENERAL = [
    ("Qual é a capital do Brasil?", [["brasília"]]),
    ("Quem descobriu o Brasil?", [["cabral"]]),
    ("Qual é o maior planeta do sistema solar?", [["júpiter"]]),
    ("Quantos dias tem uma semana?", [["7", "sete"]]),
    ("Qual é a língua oficial do Brasil?", [["português"]]),
    ("Qual é a moeda do Brasil?", [["real", "reais"]]),
    ("Em que ano foi a independência do Brasil?", [["1822"]]),
    ("Qual é o maior rio do Brasil?", [["amazonas"]]),
    ("Quantos estados tem o Brasil?", [["26", "vinte e seis", "27", "vinte e sete"]]),
    ("De que cor é o céu num dia sem nuvens?", [["azul"]]),
    ("Quanto é dois mais três?", [["5", "cinco"]]),
    ("Qual é o maior oceano do mundo?", [["pacífico"]]),
]
UNCOVERED = [
    "Tem wi-fi no museu?",
    "Tem estacionamento?",
    "Vocês têm loja de lembrancinhas?",
    "Quem é o diretor do museu?",
    "Quantas peças tem o acervo do museu?",
    "O museu abre no Carnaval?",
    "Posso fazer uma festa de aniversário no museu?",
    "Vocês alugam o auditório para eventos?",
    "Tem tomada para carregar o celular?",
    "Tem bicicletário?",
    "Quanto custa a carteirinha de sócio do museu?",
    "A cafeteria tem opção vegana?",
]
DONT_KNOW = ["não sei", "não tenho", "não encontrei", "não consta", "não possuo", "sem informaç", "não há informaç",
             "não temos informaç", "não estou cert", "atendente", "funcionári", "equipe", "chamar", "consultar",
             "verificar", "infelizmente não"]
STRONG_DONT_KNOW = ["não sei", "não tenho", "não encontrei", "não consta", "não possuo", "sem informaç"]

# The default persona before this eval (commit c82ec1f), kept to measure the change in one run.
PREVIOUS_PERSONA = (
    "Você é a Falante, uma assistente virtual brasileira simpática. Responda sempre em português do Brasil, "
    "em no máximo duas frases curtas e naturais, como numa conversa falada. Não use listas, markdown nem emojis."
)


def has_any(text: str, words: list[str]) -> bool:
    t = fold(text)
    return any(fold(w) in t for w in words)


def judge(kind: str, answer: str, expected: list[list[str]]) -> bool:
    if kind == "uncovered":
        return has_any(answer, DONT_KNOW)
    return all(has_any(answer, group) for group in expected) and not has_any(answer, STRONG_DONT_KNOW)


def questions(kinds: tuple[str, ...] = ("knowledge", "general", "uncovered")) -> list[dict[str, Any]]:
    """The questions of `kinds`, interleaved (k, k, g, u, …): a run cut short still covers every kind."""
    kn = [{"kind": "knowledge", "q": q, "expected": e, "section": s} for q, e, s in KNOWLEDGE]
    ge = [{"kind": "general", "q": q, "expected": e, "section": None} for q, e in GENERAL]
    un = [{"kind": "uncovered", "q": q, "expected": [], "section": None} for q in UNCOVERED]
    out: list[dict[str, Any]] = []
    while kn or ge or un:
        out += kn[:2] + ge[:1] + un[:1]
        kn, ge, un = kn[2:], ge[1:], un[1:]
    return [q for q in out if q["kind"] in kinds]


async def ask(llm: Any, kb: KnowledgeBase, persona: str, question: str, max_tokens: int) -> dict[str, Any]:
    """One fresh session's first turn, built as the server builds it (server/session.py + server/turn.py)."""
    conv = Conversation(persona, budget_tokens=ChatSettings().history_tokens, count_tokens=llm.count_tokens)
    conv.add_user(question)
    t0 = time.perf_counter()
    context = await kb.acontext(question)
    t_retrieval = time.perf_counter() - t0
    messages = with_context(conv.messages(reserve_tokens=kb.max_context_tokens), context)
    text, ttft, t1 = "", None, time.perf_counter()
    async for delta in llm.complete(messages, max_tokens=max_tokens, temperature=0.0):
        ttft = ttft if ttft is not None else time.perf_counter() - t1
        text += delta
    return {"answer": text.strip(), "ttft_s": round(ttft or 0.0, 3), "total_s": round(time.perf_counter() - t1, 3),
            "retrieval_ms": round(t_retrieval * 1000, 2), "retrieved": [s.title for s in kb.retrieve(question)],
            "prompt_tokens": sum(llm.count_tokens(m.content) for m in messages)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_kind = {k: [r for r in rows if r["kind"] == k] for k in ("knowledge", "general", "uncovered")}
    by_kind = {k: rs for k, rs in by_kind.items() if rs}
    summary: dict[str, Any] = {
        f"{k}_correct": f"{sum(r['correct'] for r in rs)}/{len(rs)}" for k, rs in by_kind.items()}
    summary.update({f"{k}_correct_pct": round(100 * sum(r["correct"] for r in rs) / len(rs), 1)
                    for k, rs in by_kind.items()})
    if "uncovered" in by_kind:
        summary["uncovered_invented_pct"] = round(100 - summary["uncovered_correct_pct"], 1)
    if kn := by_kind.get("knowledge"):
        summary["retrieval_hit_pct"] = round(100 * sum(any(r["section"] in t for t in r["retrieved"]) for r in kn)
                                             / len(kn), 1)
    for key in ("ttft_s", "total_s"):
        values = sorted(r[key] for r in rows)
        summary[f"{key}_p50"] = round(statistics.median(values), 3)
        summary[f"{key}_p90"] = round(values[int(0.9 * (len(values) - 1))], 3)
    summary["retrieval_ms_p50"] = round(statistics.median(r["retrieval_ms"] for r in rows), 2)
    return summary


async def run_model(model: str, personas: dict[str, tuple[str, str]], max_tokens: int, threads: int,
                    kinds: tuple[str, ...], save: Any = None) -> dict[str, Any]:
    """Every question with every (persona, rules) variant; `save(partial_run)` after each question (a long run
    keeps its rows)."""
    from llm.llamacpp import LlamaCppLanguageModel
    llm = LlamaCppLanguageModel(LlamaCppSettings(model=model, n_threads=threads))
    t0 = time.perf_counter()
    await llm.start()
    load_s = time.perf_counter() - t0
    kbs = {name: KnowledgeBase.from_file(KNOWLEDGE_FILE, rules=rules) for name, (_, rules) in personas.items()}
    for kb in kbs.values():
        kb.count_tokens_with(llm.count_tokens)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in personas}
    try:
        asked = questions(kinds)
        for i, item in enumerate(asked):
            order = list(personas) if i % 2 == 0 else list(reversed(personas))  # ABBA against machine noise
            for name in order:
                result = await ask(llm, kbs[name], personas[name][0], item["q"], max_tokens)
                result.update(item, correct=judge(item["kind"], result["answer"], item["expected"]))
                rows[name].append(result)
                print(f"[{model.split(':')[-1]} {name}] {'OK ' if result['correct'] else 'XX '} {item['q']} → "
                      f"{result['answer']!r} ({result['ttft_s']:.2f}/{result['total_s']:.2f} s)", flush=True)
            if save is not None:
                save(_run(model, load_s, threads, rows, complete=i == len(asked) - 1))
    finally:
        await llm.close()
        for kb in kbs.values():
            kb.close()
    return _run(model, load_s, threads, rows, complete=True)


def _run(model: str, load_s: float, threads: int, rows: dict[str, list[dict[str, Any]]],
         complete: bool) -> dict[str, Any]:
    return {"backend": "llama-cpp", "model": model, "load_s": round(load_s, 1), "threads": threads,
            "complete": complete, "load_average": [round(x, 1) for x in os.getloadavg()],
            "personas": {name: {"summary": summarize(rs), "rows": rs} for name, rs in rows.items() if rs}}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", default=["bundled:qwen2.5-0.5b-instruct"])
    ap.add_argument("--persona", choices=("current", "both"), default="current")
    ap.add_argument("--kinds", nargs="+", choices=("knowledge", "general", "uncovered"),
                    default=["knowledge", "general", "uncovered"])
    ap.add_argument("--max-tokens", type=int, default=ChatSettings().max_tokens)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--append", action="store_true", help="add this run's models to an existing --json report")
    args = ap.parse_args()
    persona = ChatSettings().persona
    personas = {"current": (persona, KNOWLEDGE_RULES)}
    if args.persona == "both":
        personas = {"previous": (PREVIOUS_PERSONA, KNOWLEDGE_RULES), **personas}
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor() or
        platform.machine(), "cpus": os.cpu_count(), "knowledge_file": "examples/museu.md",
        "questions": {"knowledge": len(KNOWLEDGE), "general": len(GENERAL), "uncovered": len(UNCOVERED)},
        "decoding": "greedy (temperature 0)", "max_tokens": args.max_tokens, "threads": args.threads, "runs": []}
    if args.append and args.json and args.json.exists():
        report["runs"] = json.loads(args.json.read_text())["runs"]
    done = list(report["runs"])

    def save(run: dict[str, Any]) -> None:
        if args.json:  # written after each question: a run cut short keeps what it measured
            args.json.write_text(json.dumps({**report, "runs": [*done, run]}, ensure_ascii=False, indent=1) + "\n")

    for model in args.model:
        done.append(await run_model(model, personas, args.max_tokens, args.threads, tuple(args.kinds), save))
    report["runs"] = done
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    for run in report["runs"]:
        for name, res in run["personas"].items():
            print(run["model"], name, json.dumps(res["summary"], ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
