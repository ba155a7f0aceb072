"""End-of-turn text signal, offline: how well scoring variants separate finished from unfinished pt-BR utterances.

Unfinished: part_a of ptbr-turns-dev (bare, + "," / "..." / "."), plus hand-written hesitation fragments.
Finished: text of ptbr-turns-dev and of the single-sentence ptbr-speech-dev rows, with and without the final
punctuation, plus lowercase variants. Scores with the bundled Qwen2.5-0.5B GGUF (llama.cpp, CPU), reports per
variant min/median/max of each set, the best threshold's errors and the AUC, and times the module's detector.

    PYTHONPATH=$PWD python scripts/eval_end_of_turn.py [--threads 1] [--limit N] [--contexts sys sys+greet greet]

Texts are scored as the detector sees them (llm.end_of_turn.transcript_body: a final "." / "..." dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
from pathlib import Path

import llama_cpp
import numpy as np

from falante.config import LlamaCppSettings, TurnSettings
from llm.end_of_turn import SENTINEL, SYSTEM, LlamaCppEndOfTurn, transcript_body
from llm.weights import resolve_gguf

GREETING = "Olá! Como posso ajudar?"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # shared/ beside the checkout
FRAGMENTS = ["Eu queria comprar um", "Você sabe onde fica o", "Eu preciso de", "Vou precisar de uma mesa para",
             "Eu acho que", "Pode me ajudar, mas", "Eu queria um café e", "Não sei se", "Tem como eu pagar com",
             "Queria saber o preço de um", "Eu vim aqui porque", "A gente tá procurando um", "Me diz uma coisa, o",
             "Onde fica a saída para"]
CONTEXTS = {  # the chat before the user's words
    "sys": [{"role": "system", "content": SYSTEM}],
    "sys+greet": [{"role": "system", "content": SYSTEM}, {"role": "assistant", "content": GREETING}],
    "greet": [{"role": "assistant", "content": GREETING}],  # Qwen's template adds its default system prompt
}


def manifest(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name / "manifest.jsonl").read_text().splitlines()]


def text_sets() -> tuple[list[str], list[str]]:
    turns, speech = manifest("ptbr-turns-dev"), manifest("ptbr-speech-dev")
    unfinished = [a + tail for a in [r["part_a"] for r in turns] + FRAGMENTS for tail in ("", ",", "...", ".")]
    whole = [r["text"] for r in turns] + [r["text"] for r in speech if "turns" not in r and not r["noisy"]]
    finished = [v for t in whole for v in (t, t.rstrip(".?!"), t.lower(), t.lower().rstrip(".?!"))]
    dedupe = lambda texts: list(dict.fromkeys(texts))
    return dedupe(unfinished), dedupe(finished)


class Scorer:
    """Per text: next-token probabilities after the words (end, marks, top word) and P(end | words + mark)."""

    def __init__(self, threads: int) -> None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        from llama_cpp import Llama

        path = resolve_gguf(LlamaCppSettings(model="bundled:qwen2.5-0.5b-instruct").model)
        self.llm = Llama(model_path=str(path), n_ctx=512, n_threads=threads, verbose=False)
        self.template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(
            self.llm.metadata["tokenizer.chat_template"])
        tok = lambda s, special=False: self.llm.tokenize(s.encode(), add_bos=False, special=special)
        self.tok = tok
        self.end = tok("<|im_end|>", True)[0]
        self.marks = [tok(p)[0] for p in ".?!"]
        # every token that ends a sentence: ".", "?\n", "!!"… (not "..", a trailing-off)
        pieces = [self.llm.detokenize([i]).decode(errors="ignore") for i in range(self.llm.n_vocab())]
        self.enders = np.array([bool(re.fullmatch(r"[.?!]+\s*", p)) and not p.startswith("..") for p in pieces])
        self.enders[self.end] = False
        self.words = ~self.enders
        self.words[self.end] = False

    def prefix(self, context: list[dict[str, str]]) -> list[int]:
        rendered = self.template.render(messages=context + [{"role": "user", "content": SENTINEL}],
                                        add_generation_prompt=False)
        return self.tok(rendered.split(SENTINEL)[0], True)

    def probs(self, ids: list[int]) -> np.ndarray:
        cached = self.llm.input_ids[: self.llm.n_tokens].tolist()
        keep = 0
        while keep < min(len(cached), len(ids) - 1) and cached[keep] == ids[keep]:
            keep += 1
        self.llm.n_tokens = keep
        self.llm.eval(ids[keep:])
        pointer = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self.llm.n_vocab(),)).astype(np.float64)
        p = np.exp(logits - logits.max())
        return p / p.sum()

    def features(self, prefix: list[int], body: str, message_end: bool) -> dict[str, float]:
        ids = prefix + self.tok(body)
        p = self.probs(ids)
        after = [self.probs(ids + [m])[self.end] for m in self.marks] if message_end else [np.nan] * 3
        return {"end": p[self.end], "marks": [p[m] for m in self.marks], "end_after": after,
                "enders": p[self.enders].sum(), "top_word": p[self.words].max()}


VARIANTS = {  # name → score from the features
    "a message end: P(end)+ΣP(m)P(end|m)": lambda f: f["end"] + sum(m * e for m, e in zip(f["marks"], f["end_after"])),
    "b sentence end: P(end)+ΣP(m)": lambda f: f["end"] + sum(f["marks"]),
    "b' P(end)+ΣP(any .?! token)": lambda f: f["end"] + f["enders"],
    "d max(P(end),P(m)) vs top word": lambda f: (x := max(f["end"], *f["marks"])) / (x + f["top_word"]),
    "d' (P(end)+ΣP(m)) vs top word": lambda f: (x := f["end"] + sum(f["marks"])) / (x + f["top_word"]),
}


def report(name: str, unfinished: list[float], finished: list[float]) -> tuple[float, float]:
    u, f = np.array(unfinished), np.array(finished)
    auc = float(np.mean([(fi > ui) + 0.5 * (fi == ui) for fi in f for ui in u]))
    cuts = sorted(set(np.concatenate([u, f]).tolist()))
    errors = [(int((u >= t).sum()), int((f < t).sum()), t) for t in cuts]
    best = min(errors, key=lambda e: (e[0] + e[1], e[0]))
    stats = lambda x: f"{x.min():.3f}/{np.median(x):.3f}/{x.max():.3f}"
    print(f"{name:48s} {stats(u):>19s} {stats(f):>19s} {best[2]:7.3f} {best[0]:3d} {best[1]:3d}  {auc:.4f}")
    return float(u.max()), float(np.quantile(f, 0.1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="score only the first N texts of each set (quick look)")
    parser.add_argument("--contexts", nargs="*", default=["sys"], choices=list(CONTEXTS))
    parser.add_argument("--show", default="", help="print each text's score for this variant prefix, e.g. 'b sys'")
    args = parser.parse_args()
    unfinished, finished = text_sets()
    if args.limit:
        unfinished, finished = unfinished[: args.limit], finished[: args.limit]
    print(f"{len(unfinished)} unfinished, {len(finished)} finished texts")
    scorer = Scorer(args.threads)
    print(f"{'variant (context)':48s} {'unfinished min/med/max':>19s} {'finished min/med/max':>19s} "
          f"{'best t':>7s} {'u≥t':>3s} {'f<t':>3s}  AUC")
    for context in args.contexts:
        prefix = scorer.prefix(CONTEXTS[context])
        bodies = sorted({transcript_body(t) for t in unfinished + finished})  # sorted: the prefix cache helps
        by_body = {b: scorer.features(prefix, b, message_end=context == "sys") for b in bodies}
        feats = {t: by_body[transcript_body(t)] for t in unfinished + finished}
        for name, score in VARIANTS.items():
            if name.startswith("a ") and context != "sys":
                continue  # P(end | words + mark) costs 3 more decodes: only in the current context
            label = f"{name} [{context}]"
            report(label, [score(feats[t]) for t in unfinished], [score(feats[t]) for t in finished])
            if args.show and label.startswith(args.show.split()[0]) and context == args.show.split()[-1]:
                for t in sorted(unfinished + finished, key=lambda t: score(feats[t])):
                    print(f"   {score(feats[t]):.4f} {'U' if t in unfinished else 'F'} {t}")
    asyncio.run(timing(args.threads))


async def timing(threads: int) -> None:
    """The module's detector (what the server runs): median of 20 calls on different texts (no cached words)."""
    detector = LlamaCppEndOfTurn(LlamaCppSettings(model="bundled:qwen2.5-0.5b-instruct"), threads=threads)
    detector.load()
    texts = [r["text"] for r in manifest("ptbr-turns-dev")]
    await detector.end_probability("Oi")
    times = []
    for i in range(20):
        start = time.perf_counter()
        await detector.end_probability(texts[i % len(texts)] if i % 2 else texts[i % len(texts)].lower())
        times.append(time.perf_counter() - start)
    detector.close()
    medium = TurnSettings().medium.threshold
    print(f"module detector: median {statistics.median(times) * 1000:.0f} ms/call over 20 ({threads} threads, "
          f"shared CPU), max {max(times) * 1000:.0f} ms; medium threshold {medium}")


if __name__ == "__main__":
    main()
