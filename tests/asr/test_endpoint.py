"""semantic_vad in the real Listener (energy VAD stand-in, scripted recognizer and detector): which pauses end a turn.

Decisions are read from the events (decision, waited silence on the audio clock), never from wall time.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from asr.endpoint import EndOfTurnPolicy
from asr.listener import Listener
from falante.config import FasterWhisperSettings, TurnSettings, VadSettings
from falante.types import SpeechStopped, Transcript
from tests.asr.helpers import SR, EnergyVadModel, ScriptedRecognizer, concat, silence, tone
from tests.fakes import FakeEndOfTurn

PART_A = "Eu queria saber se vocês"
WHOLE = "Eu queria saber se vocês abrem no domingo?"
MEDIUM = TurnSettings().medium


def by_length(seconds: float, partial: bool) -> str:
    """The speculative final of part A alone is short (< 2 s with padding and tail); the whole one is long."""
    return PART_A if seconds < 2.0 else WHOLE


def make(recognizer, policy: EndOfTurnPolicy | None) -> Listener:
    vad = VadSettings(silence_ms=policy.params.max_ms if policy else 700)  # semantic_vad: the VAD's silence = cap
    return Listener(recognizer, EnergyVadModel(), FasterWhisperSettings(vad=vad, partials=False),
                    end_of_turn=policy)


async def stepped(audio: np.ndarray, chunk: int = 320):
    """20 ms chunks, each after a few loop turns: decodes and scores finish while silence is still arriving."""
    for i in range(0, len(audio), chunk):
        for _ in range(5):
            await asyncio.sleep(0)
        yield audio[i:i + chunk]


async def run(policy: EndOfTurnPolicy | None, audio: np.ndarray) -> list:
    listener = make(ScriptedRecognizer(by_length), policy)
    return [ev async for ev in listener.events(stepped(audio))]


def stops(events) -> list[SpeechStopped]:
    return [ev for ev in events if isinstance(ev, SpeechStopped)]


# ------------------------------------------------------------------------------------------ the policy alone
class Failing:
    async def end_probability(self, text: str) -> float:
        raise RuntimeError("boom")


@pytest.mark.parametrize("score,decision,ms", [(0.9, "complete", MEDIUM.complete_ms), (0.02, "complete", MEDIUM.complete_ms),
                                               (0.019, "incomplete", MEDIUM.max_ms), (0.0, "incomplete", MEDIUM.max_ms),
                                               (None, "timing", MEDIUM.timing_ms)])
def test_policy_waits_by_score(score, decision, ms):
    policy = EndOfTurnPolicy(MEDIUM, FakeEndOfTurn())
    assert policy.decision(score) == decision
    assert policy.wait_samples(score) == ms * SR // 1000


async def test_policy_scores_degrade_to_timing():
    assert await EndOfTurnPolicy(MEDIUM, FakeEndOfTurn()).score("Vocês abrem no domingo?") == 0.9
    assert await EndOfTurnPolicy(MEDIUM, FakeEndOfTurn()).score("  ") is None  # nothing said: timing
    assert await EndOfTurnPolicy(MEDIUM, Failing()).score("Vocês abrem no domingo?") is None
    assert not EndOfTurnPolicy(MEDIUM, None).scores  # remote LLM: no detector, timing only


def test_eagerness_orders_waits():
    t = TurnSettings()
    assert t.eagerness("auto") == t.eagerness(None) == t.medium
    assert t.high.complete_ms <= t.medium.complete_ms <= t.low.complete_ms
    assert t.high.max_ms <= t.medium.max_ms <= t.low.max_ms
    assert t.high.threshold <= t.medium.threshold <= t.low.threshold


# ------------------------------------------------------------------------------------------ in the Listener
async def test_pause_after_unfinished_phrase_does_not_end_the_turn():
    detector = FakeEndOfTurn()
    audio = concat([silence(0.5), tone(1.0), silence(1.0), tone(1.0), silence(1.0)])
    events = await run(EndOfTurnPolicy(MEDIUM, detector), audio)
    assert len(stops(events)) == 1, "the 1 s hesitation after part A did not end the turn"
    stopped = stops(events)[0]
    assert stopped.decision == "complete" and stopped.score == 0.9
    assert MEDIUM.complete_ms <= stopped.waited_ms < MEDIUM.max_ms
    assert abs(stopped.sample - int(3.5 * SR)) < 1024
    assert detector.texts[0] == PART_A and detector.texts[-1] == WHOLE  # part A was scored, and found unfinished
    final = events[-1]
    assert isinstance(final, Transcript) and final.final and final.text == WHOLE


async def test_finished_question_ends_sooner_than_server_vad():
    audio = concat([silence(0.5), tone(1.6), silence(1.0)])
    semantic = stops(await run(EndOfTurnPolicy(MEDIUM, FakeEndOfTurn()), audio))
    fixed = stops(await run(None, audio))
    assert [s.decision for s in semantic] == ["complete"] and [s.decision for s in fixed] == ["silence"]
    assert semantic[0].sample == fixed[0].sample  # same speech end, reported sooner
    assert semantic[0].waited_ms < 700


async def test_unfinished_phrase_ends_at_the_hard_cap():
    audio = concat([silence(0.5), tone(1.0), silence(MEDIUM.max_ms / 1000 + 0.3)])
    [stopped] = stops(await run(EndOfTurnPolicy(MEDIUM, FakeEndOfTurn()), audio))
    assert stopped.decision == "max_silence" and stopped.score == 0.001 and stopped.waited_ms == MEDIUM.max_ms


async def test_without_detector_semantic_vad_is_timing_only():
    audio = concat([silence(0.5), tone(1.0), silence(1.5)])
    [stopped] = stops(await run(EndOfTurnPolicy(MEDIUM, None), audio))
    assert stopped.decision == "timing" and stopped.score is None
    assert MEDIUM.timing_ms <= stopped.waited_ms < MEDIUM.timing_ms + 100


class SlowFinals(ScriptedRecognizer):
    """Drafts answer at once; finals (beam search on a slow CPU) wait until `release` is set."""

    def __init__(self) -> None:
        super().__init__(lambda seconds, partial: "Vocês abrem no domingo?" if partial else "Vocês abrem no domingo.")
        self.release = asyncio.Event()

    async def transcribe(self, audio, *, language=None, partial=False, draft=False):
        if not (partial or draft):
            await self.release.wait()
        return await super().transcribe(audio, language=language, partial=partial or draft, draft=draft)


async def test_decision_scores_a_draft_and_does_not_wait_for_the_final():
    """The turn ends on the draft's score while the accurate final is still decoding; the transcript is the final's.
    (Before: the decision waited for the final's decode, so on 2 CPU cores turns ended at the hard cap.)"""
    recognizer, detector = SlowFinals(), FakeEndOfTurn()
    listener = make(recognizer, EndOfTurnPolicy(MEDIUM, detector))
    audio = concat([silence(0.5), tone(1.6), silence(1.0)])
    events = []
    async for ev in listener.events(stepped(audio)):
        events.append(ev)
        if isinstance(ev, SpeechStopped):
            assert not recognizer.release.is_set()  # decided with the final's decode still held
            recognizer.release.set()
    [stopped] = stops(events)
    assert stopped.decision == "complete" and stopped.score == 0.9
    assert MEDIUM.complete_ms <= stopped.waited_ms < MEDIUM.complete_ms + 100
    assert detector.texts == ["Vocês abrem no domingo?"]  # the draft was scored
    assert len(recognizer.drafts) == 1 and recognizer.drafts[0] < recognizer.calls[-1][0]  # shorter tail than the final
    final = events[-1]
    assert isinstance(final, Transcript) and final.final and final.text == "Vocês abrem no domingo."
