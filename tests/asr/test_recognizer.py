"""Recognizer plumbing without weights: input conditioning, the priority pool, the finals batcher."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from asr.executor import DRAFT, FINAL, PARTIAL, PriorityExecutor
from asr.whisper import FasterWhisperRecognizer, prepare
from falante.config import FasterWhisperSettings
from tests.asr.helpers import SR, tone


def test_prepare_rejects_garbage_and_skips_nothing_to_hear():
    with pytest.raises(ValueError, match="NaN"):
        prepare(np.array([0.0, np.nan] * 2000, dtype=np.float32))
    with pytest.raises(ValueError, match="float samples"):
        prepare(np.zeros(SR, dtype=np.int16))
    assert prepare(np.zeros(0, dtype=np.float32)) is None
    assert prepare(tone(0.05)) is None, "< 100 ms holds no word"
    assert prepare(np.zeros(SR, dtype=np.float32)) is None
    assert prepare(np.full(SR, 0.4, dtype=np.float32)) is None, "pure DC offset is silence"


def test_prepare_removes_dc_and_bounds_clipping():
    out = prepare(tone(1.0) * 5 + 0.5)
    assert out is not None and abs(float(out.mean())) < 1e-3 and float(np.abs(out).max()) <= 1.0


async def test_transcribe_before_load_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"load\(\) was not called"):
        await FasterWhisperRecognizer().transcribe(tone(1.0))


async def test_drafts_then_finals_jump_ahead_of_partials_and_cancelled_jobs_never_run():
    pool = PriorityExecutor(1)
    gate, order = threading.Event(), []
    try:
        started = threading.Event()
        blocker_task = asyncio.ensure_future(pool.run(PARTIAL, lambda: (started.set(), gate.wait())))
        await asyncio.to_thread(started.wait)  # the blocker occupies the only worker
        partial = asyncio.ensure_future(pool.run(PARTIAL, order.append, "partial"))
        dropped = asyncio.ensure_future(pool.run(PARTIAL, order.append, "dropped"))
        final = asyncio.ensure_future(pool.run(FINAL, order.append, "final"))
        draft = asyncio.ensure_future(pool.run(DRAFT, order.append, "draft"))  # semantic_vad's decision waits on it
        await asyncio.sleep(0)  # let the four submit
        dropped.cancel()
        with pytest.raises(asyncio.CancelledError):
            await dropped
        gate.set()
        await asyncio.gather(blocker_task, partial, final, draft)
        assert order == ["draft", "final", "partial"]
    finally:
        pool.shutdown()


async def test_a_cancelled_running_job_finishes_and_the_pool_keeps_working():
    pool = PriorityExecutor(1)
    started, gate, ran = threading.Event(), threading.Event(), []

    def slow():
        started.set()
        gate.wait()
        ran.append("slow")
        return "dropped"

    try:
        task = asyncio.ensure_future(pool.run(FINAL, slow))
        await asyncio.to_thread(started.wait)
        task.cancel()
        gate.set()
        assert await pool.run(FINAL, lambda: "next") == "next"
        assert ran == ["slow"] and task.cancelled()
    finally:
        pool.shutdown()


async def test_errors_reach_the_caller():
    pool = PriorityExecutor(1)
    try:
        with pytest.raises(ZeroDivisionError):
            await pool.run(FINAL, lambda: 1 / 0)
    finally:
        pool.shutdown()


async def test_batch_finals_collects_what_queued_while_the_model_was_busy(monkeypatch):
    rec = FasterWhisperRecognizer(FasterWhisperSettings(batch_finals=True))
    rec._executor = PriorityExecutor(1)
    rec.model = object()  # decode_batch is replaced below: no weights needed
    batches: list[int] = []
    monkeypatch.setattr(rec, "decode_batch", lambda audios, langs: batches.append(len(audios)) or
                        [f"{len(a) / SR:.1f}" for a in audios])
    gate = threading.Event()
    try:
        started = threading.Event()
        busy = asyncio.ensure_future(rec._executor.run(FINAL, lambda: (started.set(), gate.wait())))
        await asyncio.to_thread(started.wait)
        calls = [asyncio.ensure_future(rec.transcribe(tone(s))) for s in (1.0, 2.0, 3.0)]
        while rec._executor.pending < 3:
            await asyncio.sleep(0.001)
        gate.set()
        assert await asyncio.gather(*calls) == ["1.0", "2.0", "3.0"]
        await busy
        assert batches == [3], "three finals queued behind a busy model are decoded as one batch"
    finally:
        rec.close()


async def test_sessions_are_served_in_turn_not_in_submit_order():
    """One session queueing many decodes (speech at 10× real time) used to make another session's final wait
    behind all of them (FIFO within a priority: 'b' ran 6th); now each waiting owner gets the next turn."""
    pool = PriorityExecutor(1)
    gate, order = threading.Event(), []
    try:
        started = threading.Event()
        blocker = asyncio.ensure_future(pool.run(FINAL, lambda: (started.set(), gate.wait())))
        await asyncio.to_thread(started.wait)
        futures = [pool.submit(FINAL, order.append, f"a{i}", owner="a") for i in range(5)]
        futures.append(pool.submit(FINAL, order.append, "b0", owner="b"))
        futures.append(pool.submit(PARTIAL, order.append, "c-partial", owner="c"))
        futures.append(pool.submit(FINAL, order.append, "b1", owner="b"))
        assert pool.pending == 8 and pool.pending_for("a") == 5 and pool.pending_for("b") == 2
        gate.set()
        await asyncio.gather(blocker, *map(asyncio.wrap_future, futures))
        assert order == ["a0", "b0", "a1", "b1", "a2", "a3", "a4", "c-partial"]
    finally:
        gate.set()
        pool.shutdown()


async def test_the_owner_comes_from_the_calling_context():
    from falante.fairness import set_owner

    pool = PriorityExecutor(1)
    gate, order = threading.Event(), []
    try:
        started = threading.Event()
        blocker = asyncio.ensure_future(pool.run(FINAL, lambda: (started.set(), gate.wait())))
        await asyncio.to_thread(started.wait)

        async def session(name: str, jobs: int) -> None:
            set_owner(name)  # what Session.open does; tasks created later inherit it
            await asyncio.gather(*(pool.run(FINAL, order.append, f"{name}{i}") for i in range(jobs)))

        a = asyncio.ensure_future(session("a", 3))
        while pool.pending < 3:
            await asyncio.sleep(0)
        b = asyncio.ensure_future(session("b", 1))
        while pool.pending < 4:
            await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(blocker, a, b)
        assert order == ["a0", "b0", "a1", "a2"]
    finally:
        gate.set()
        pool.shutdown()


async def test_the_pieces_of_long_audio_wait_behind_every_live_decode(monkeypatch):
    """A long commit's pieces run as BULK: another session's final and partial go first, not round-robin with them."""
    rec = FasterWhisperRecognizer(FasterWhisperSettings(batch_finals=False))
    rec._executor = PriorityExecutor(1)
    order: list[str] = []
    monkeypatch.setattr(rec, "_decode", lambda audio, lang, partial, frames=None: order.append(
        "partial" if partial else f"{len(audio) / SR:.0f}s") or "texto")
    gate, started = threading.Event(), threading.Event()
    try:
        busy = asyncio.ensure_future(rec._executor.run(FINAL, lambda: (started.set(), gate.wait())))
        await asyncio.to_thread(started.wait)
        long = asyncio.ensure_future(rec.transcribe(tone(45.0)))  # two pieces, the first queued now
        while rec._executor.pending < 1:
            await asyncio.sleep(0.001)
        live = [asyncio.ensure_future(rec.transcribe(tone(2.0))),
                asyncio.ensure_future(rec.transcribe(tone(1.0), partial=True))]
        while rec._executor.pending < 3:
            await asyncio.sleep(0.001)
        gate.set()
        await asyncio.gather(busy, long, *live)
        assert order[:2] == ["2s", "partial"], order  # before: the first 30 s piece ran ahead of the partial
        assert len(order) == 4
    finally:
        rec.close()


def test_long_audio_is_cut_at_pauses_into_window_sized_pieces():
    from asr.whisper import WINDOW_SAMPLES, split_at_pauses

    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(75 * SR)).astype(np.float32)
    audio[27 * SR: 27 * SR + SR // 5] = 0.0  # a pause 27 s in, within the last 5 s before the 30 s limit
    pieces = split_at_pauses(audio)
    assert [len(p) for p in pieces] and all(len(p) <= WINDOW_SAMPLES for p in pieces)
    assert np.array_equal(np.concatenate(pieces), audio)
    assert 27 * SR <= len(pieces[0]) <= 27 * SR + SR // 5  # cut inside the pause
    assert len(split_at_pauses(audio[:SR])) == 1
