"""Listener logic with the energy VAD stand-in and a scripted recognizer (fast, no weights)."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest

from asr.listener import Listener, transcribe_buffer
from asr.vad import WINDOW
from falante.config import FasterWhisperSettings, VadSettings
from falante.types import SpeechStarted, SpeechStopped, Transcript
from tests.asr.helpers import SR, EnergyVadModel, ScriptedRecognizer, collect, concat, feed, silence, tone


def make(recognizer, **overrides) -> Listener:
    vad = VadSettings(**overrides.pop("vad", {}))
    return Listener(recognizer, EnergyVadModel(), FasterWhisperSettings(vad=vad, **overrides))


def kinds(events) -> list[str]:
    out = []
    for _, ev in events:
        out.append("partial" if isinstance(ev, Transcript) and not ev.final else
                   "final" if isinstance(ev, Transcript) else type(ev).__name__)
    return out


async def test_one_utterance_gives_started_partials_stopped_final():
    rec = ScriptedRecognizer(delay=0.01)
    audio = concat([silence(0.512), tone(2.048), silence(1.0)])
    events = await collect(make(rec, partial_interval_ms=300).events(feed(audio, realtime=False)))
    names = kinds(events)
    assert names[0] == "SpeechStarted" and names[-2:] == ["SpeechStopped", "final"]
    final = events[-1][1]
    assert final.start_sample == 16 * WINDOW - 300 * 16 and final.end_sample == (16 + 64) * WINDOW
    assert events[0][1] == SpeechStarted(16 * WINDOW) and events[-2][1] == SpeechStopped((16 + 64) * WINDOW)
    finals = [n for n, partial in rec.calls if not partial]
    # the decoded final spans prefix padding + speech + a short tail
    assert finals[-1] == (64 * WINDOW) + 300 * 16 + FasterWhisperSettings().final_tail_ms * 16


async def test_partials_arrive_while_speaking_in_real_time():
    rec = ScriptedRecognizer(delay=0.05)
    audio = concat([silence(0.3), tone(3.0), silence(0.8)])
    events = await collect(make(rec, partial_interval_ms=400).events(feed(audio, realtime=True)))
    names = kinds(events)
    assert "partial" in names[: names.index("SpeechStopped")]
    partial_calls = [c for c in rec.calls if c[1]]
    assert 3 <= len(partial_calls) <= 3.0 / 0.4 + 1, "one partial per interval, never one per chunk"


async def test_intake_continues_while_a_decode_is_pending():
    rec = ScriptedRecognizer()
    rec.gate = asyncio.Event()  # every decode blocks until released
    consumed: list[int] = []
    audio = concat([silence(0.3), tone(2.0), silence(1.5)])
    listener = make(rec, partial_interval_ms=200)
    task = asyncio.ensure_future(collect(listener.events(feed(audio, chunk=320, consumed=consumed))))
    await rec.started.wait()
    while consumed[-1] < len(audio):  # all audio is read even though no decode has finished
        await asyncio.sleep(0)
    assert not task.done()
    rec.gate.set()
    events = await task
    assert kinds(events)[-2:] == ["SpeechStopped", "final"]


async def gated_source(rec: ScriptedRecognizer, before: np.ndarray, after: np.ndarray):
    """Feed `before`, wait until a decode has started, release it, then feed `after`."""
    async for chunk in feed(before, chunk=320):
        yield chunk
    await rec.started.wait()
    rec.gate.set()
    async for chunk in feed(after, chunk=320):
        yield chunk


async def test_final_is_decoded_speculatively_before_end_of_turn():
    rec = ScriptedRecognizer()
    rec.gate = asyncio.Event()
    audio = concat([silence(0.3), tone(1.0), silence(0.45)])  # 160 ms speculation < 450 ms < 500 ms end of turn
    listener = make(rec, partials=False, speculative_final_ms=160)
    # the final decode begins although the turn has not ended yet
    events = await collect(listener.events(gated_source(rec, audio, silence(0.5))))
    assert kinds(events) == ["SpeechStarted", "SpeechStopped", "final"]
    assert len(rec.calls) == 1, "the speculative decode is the final: no second decode"


async def test_speculative_final_does_not_wait_for_the_tail_it_decodes():
    rec = ScriptedRecognizer()
    rec.gate = asyncio.Event()
    hum = np.full(int(0.2 * SR), 1e-4, dtype=np.float32)  # 200 ms of room tone heard, a longer tail decoded
    listener = make(rec, partials=False, speculative_final_ms=160)
    events = await collect(listener.events(gated_source(rec, concat([silence(0.3), tone(1.0), hum]), silence(0.6))))
    assert kinds(events) == ["SpeechStarted", "SpeechStopped", "final"]
    assert len(rec.calls) == 1, "launched after 160 ms of silence and kept as the final"
    decoded, tail = rec.audios[0], FasterWhisperSettings().final_tail_ms * 16
    final = events[-1][1]
    assert len(decoded) == final.end_sample - final.start_sample + tail  # prefix padding + speech + tail
    heard = decoded[-tail:]
    assert np.any(heard == np.float32(1e-4)) and not np.any(heard[-100:]), "what arrived, then digital silence"


async def test_speculative_final_is_dropped_when_speech_resumes():
    rec = ScriptedRecognizer(text_for=lambda s, p: f"{s:.2f}")
    audio = concat([silence(0.3), tone(1.0), silence(0.3), tone(1.0), silence(0.8)])
    events = await collect(make(rec, partials=False).events(feed(audio, chunk=320)))
    assert kinds(events) == ["SpeechStarted", "SpeechStopped", "final"]
    final = events[-1][1]
    assert float(final.text) > 2.0, "the final covers both stretches of speech, not the stale first one"


async def test_two_turns_give_two_finals_in_order():
    rec = ScriptedRecognizer(delay=0.02, text_for=lambda s, p: f"{s:.1f}")
    audio = concat([silence(0.3), tone(1.0), silence(1.0), tone(2.0), silence(1.0)])
    events = await collect(make(rec).events(feed(audio, chunk=3200)))
    finals = [ev for _, ev in events if isinstance(ev, Transcript) and ev.final]
    assert len(finals) == 2 and finals[0].end_sample < finals[1].start_sample
    names = [n for n in kinds(events) if n != "partial"]
    assert names == ["SpeechStarted", "SpeechStopped", "final"] * 2


async def test_local_agreement_commits_only_what_two_decodes_agree_on():
    script = ["o gato", "o gato subiu", "o gato subiu no", "o cão subiu no telhado"]
    rec = ScriptedRecognizer(
        text_for=lambda s, p: script[min(sum(c[1] for c in rec.calls), 4) - 1] if p else "o gato subiu no telhado")
    audio = concat([silence(0.3), tone(3.2), silence(1.0)])
    listener = make(rec, partial_interval_ms=600)
    events, stable = [], []
    async for ev in listener.events(feed(audio, chunk=1600, realtime=True)):
        events.append((0.0, ev))
        if isinstance(ev, Transcript) and not ev.final:
            stable.append(listener.stable_text)
    partials = [ev.text for _, ev in events if isinstance(ev, Transcript) and not ev.final]
    assert partials[:3] == ["o gato", "o gato subiu", "o gato subiu no"]
    assert stable[:3] == ["", "o gato", "o gato subiu"]
    assert all(b.startswith(a) for a, b in itertools.pairwise(stable)), "stable text only grows"
    # "o gato subiu" was agreed on: a later, disagreeing hypothesis does not take it back
    assert all(p.startswith("o gato subiu") for p in partials[2:])


async def test_long_utterance_is_cut_into_pieces_and_final_joins_them():
    rec = ScriptedRecognizer(text_for=lambda s, p: "parcial" if p else f"[{s:.0f}]")
    speech = concat([concat([tone(4.0), silence(0.2)]) for _ in range(10)])  # 42 s with short pauses
    audio = concat([silence(0.3), speech, silence(1.0)])
    listener = make(rec, partial_window_s=10.0)
    events = await collect(listener.events(feed(audio, chunk=3200)))
    finals = [ev for _, ev in events if isinstance(ev, Transcript) and ev.final]
    assert len(finals) == 1
    pieces = finals[0].text.split()
    assert len(pieces) >= 4, finals[0].text
    assert max(n for n, _ in rec.calls) <= 10.5 * SR, "no decode sees more than the window cap"
    assert sum(n for n, p in rec.calls if not p) >= len(speech) - SR  # the final covers all the speech
    assert listener.audio.capacity <= 40 * SR, "the buffer was compacted, not grown with the utterance"


async def test_reset_drops_the_current_utterance():
    rec = ScriptedRecognizer()
    rec.gate = asyncio.Event()
    listener = make(rec)
    audio = concat([silence(0.3), tone(1.5)])

    async def source():
        async for chunk in feed(audio, chunk=320):
            yield chunk
        await rec.started.wait()
        listener.reset()  # e.g. input_audio_buffer.clear while a partial decodes
        rec.gate.set()
        async for chunk in feed(silence(1.0), chunk=320):
            yield chunk

    events = await collect(listener.events(source()))
    assert kinds(events) == ["SpeechStarted"]
    assert rec.cancelled >= 1


async def test_cancelling_the_consumer_cancels_pending_decodes():
    rec = ScriptedRecognizer()
    rec.gate = asyncio.Event()
    listener = make(rec, partial_interval_ms=200)

    async def endless():
        async for chunk in feed(concat([silence(0.3), tone(2.0)]), chunk=320):
            yield chunk
        await asyncio.Event().wait()  # the client stays connected but silent

    task = asyncio.ensure_future(collect(listener.events(endless())))
    await rec.started.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rec.cancelled == len(rec.calls) >= 1


async def test_bad_chunk_raises_a_clear_error():
    listener = make(ScriptedRecognizer())
    with pytest.raises(ValueError, match="NaN"):
        await collect(listener.events(feed(np.array([0.1, np.nan], dtype=np.float32))))


async def test_manual_commit_helper_resamples_to_16k():
    rec = ScriptedRecognizer(text_for=lambda s, p: f"{s:.2f}")
    out = await transcribe_buffer(rec, np.resize(tone(1.0), 24_000), sample_rate=24_000)
    assert out.final and out.end_sample == SR and out.text == "1.00"
