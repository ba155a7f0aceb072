"""The shared streaming loop: streaming order, cancellation and errors, with a scripted fake backend."""

import asyncio
import threading

import numpy as np
import pytest

from falante.types import SpeechChunk, SpeechSynthesizer
from tts.base import PieceSynthesizer, TTSNotLoaded


class GatedSynth(PieceSynthesizer):
    """Each piece (a clause) renders only when the test opens its gate: the test controls the timeline."""

    default_voice = "a"

    def __init__(self):
        super().__init__()
        self.started = []  # threading.Event per render start
        self.gates = [threading.Event() for _ in range(20)]
        self.render_started = [threading.Event() for _ in range(20)]

    def _load(self):
        pass

    def voices(self):
        return ["a", "b"]

    def _plan(self, sentence):
        return [p.strip() for p in sentence.split(",") if p.strip()]

    def _render(self, piece, voice, speed):
        n = self.rendered_pieces
        self.render_started[n].set()
        if not self.gates[n].wait(10):
            raise TimeoutError("test gate never opened")
        return SpeechChunk(np.full(100, 0.1, np.float32), 24_000, (), piece)


async def wait_started(synth, n):
    assert await asyncio.to_thread(synth.render_started[n].wait, 10)


def test_fake_satisfies_the_protocol():
    assert isinstance(GatedSynth(), SpeechSynthesizer)


async def test_first_chunk_arrives_before_later_pieces_are_rendered():
    synth = GatedSynth()
    synth.load()
    stream = synth.synthesize("um, dois, três")
    synth.gates[0].set()
    first = await anext(stream)
    assert first.text == "um" and synth.rendered_pieces == 1
    for gate in synth.gates[1:3]:
        gate.set()
    rest = [c.text async for c in stream]
    assert rest == ["dois", "três"]


async def test_aclose_stops_further_pieces():
    synth = GatedSynth()
    synth.load()
    stream = synth.synthesize("um, dois, três, quatro")
    synth.gates[0].set()
    await anext(stream)
    await stream.aclose()
    for gate in synth.gates:
        gate.set()
    assert synth.rendered_pieces == 1
    assert not synth.render_started[1].is_set()


async def test_task_cancellation_mid_piece_stops_the_rest():
    synth = GatedSynth()
    synth.load()
    got = []

    async def consume():
        async for chunk in synth.synthesize("um, dois, três, quatro"):
            got.append(chunk.text)

    synth.gates[0].set()
    task = asyncio.create_task(consume())
    await wait_started(synth, 1)  # piece 2 is inside the model call
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    synth.gates[1].set()  # the in-flight call finishes in its thread…
    await asyncio.to_thread(synth._executor.submit(lambda: None).result, 10)  # …drain the executor
    assert got == ["um"]
    assert synth.rendered_pieces == 2 and not synth.render_started[2].is_set()  # …and nothing after it


async def test_errors_are_clear():
    synth = GatedSynth()
    with pytest.raises(TTSNotLoaded):
        await anext(synth.synthesize("oi"))
    synth.load()
    with pytest.raises(ValueError, match="unknown voice"):
        await anext(synth.synthesize("oi", voice="zz"))
    with pytest.raises(ValueError, match="speed"):
        await anext(synth.synthesize("oi", speed=0))
    with pytest.raises(TypeError):
        await anext(synth.synthesize(b"oi"))  # type: ignore[arg-type]


async def test_load_is_idempotent():
    synth = GatedSynth()
    synth.load()
    synth.load()
    assert synth.loads == 1
