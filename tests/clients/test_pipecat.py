"""pipecat's `OpenAIRealtimeLLMService` talks to falante unchanged (only `base_url` points at it).

An `error` event is fatal to pipecat's service (it stops reading), so any error would hang these tests; the
pipeline runs without a transport: audio frames are queued into it as a transport's input would push them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from falante.audio import float_to_pcm16_bytes
from tests.clients.conftest import LONG_REPLY, RATE, speech
from tests.conftest import fake_backends
from tests.fakes import FakeLLM, FakeTTS

pytest.importorskip("pipecat.services.openai.realtime.llm")


class Pipecat:
    """A pipecat pipeline around the service: user aggregator → service → collector → assistant aggregator."""

    timeout = 60.0

    def __init__(self, host: str, voice: str | None, first_message: str) -> None:
        from pipecat.frames.frames import ErrorFrame, LLMFullResponseEndFrame
        from pipecat.pipeline.pipeline import Pipeline
        from pipecat.pipeline.task import PipelineParams
        from pipecat.pipeline.worker import PipelineWorker
        from pipecat.processors.aggregators.llm_context import LLMContext
        from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
        from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
        from pipecat.services.openai.realtime import events
        from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

        output = events.AudioOutput(voice=voice) if voice else None
        self.llm = OpenAIRealtimeLLMService(
            api_key="local", base_url=f"ws://{host}/v1/realtime",
            settings=OpenAIRealtimeLLMService.Settings(session_properties=events.SessionProperties(
                instructions="Responda em português, brevemente.",
                audio=events.AudioConfiguration(output=output) if output else None)))
        self.context = LLMContext([{"role": "user", "content": first_message}])
        aggregators = LLMContextAggregatorPair(self.context)
        self.replies: asyncio.Queue[Any] = asyncio.Queue()
        self.errors: list[Any] = []
        outer = self

        class Collect(FrameProcessor):
            async def process_frame(self, frame, direction):
                await super().process_frame(frame, direction)
                if isinstance(frame, ErrorFrame):
                    outer.errors.append(frame)
                elif isinstance(frame, LLMFullResponseEndFrame) and direction == FrameDirection.DOWNSTREAM:
                    outer.replies.put_nowait(frame)
                await self.push_frame(frame, direction)

        # errors travel upstream (to the first processor), replies downstream: a collector at each end
        self.worker = PipelineWorker(Pipeline([Collect(), aggregators.user(), self.llm, Collect(),
                                               aggregators.assistant()]),
                                     params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE))

    async def run(self, script) -> None:
        from pipecat.frames.frames import EndFrame
        from pipecat.workers.runner import WorkerRunner

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)

        async def drive() -> None:
            try:
                await script(self)
            finally:
                await self.worker.queue_frame(EndFrame())
        await asyncio.wait_for(asyncio.gather(runner.run(), drive()), self.timeout)

    async def reply(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(self.replies.get(), timeout)

    async def speak(self, audio, pace: float = 0.0) -> None:
        """Queue 100 ms microphone frames; `pace` 1.0 = at real time (the real models' test)."""
        from pipecat.frames.frames import InputAudioRawFrame
        step = RATE // 10
        for i in range(0, len(audio), step):
            await self.worker.queue_frame(InputAudioRawFrame(audio=float_to_pcm16_bytes(audio[i:i + step]),
                                                             sample_rate=RATE, num_channels=1))
            await asyncio.sleep(0.1 * pace)


def history(context: Any, role: str) -> list[str]:
    return [m["content"] for m in context.get_messages() if isinstance(m, dict) and m.get("role") == role]


@pytest.mark.parametrize("voice", [None, "alloy"])  # pipecat's default (none: the server's) and the docs' "alloy"
async def test_pipecat_typed_and_spoken_turns(voice, fake_server, client_errors, server_events):
    async with fake_server(fake_backends(llm=FakeLLM("Bom dia! Posso ajudar?"))) as (url, _app):
        pc = Pipecat(url.split("/")[2], voice, "Oi, tudo bem?")

        async def script(pc: Pipecat) -> None:
            from pipecat.frames.frames import LLMRunFrame
            await pc.worker.queue_frame(LLMRunFrame())
            await pc.reply()
            await pc.speak(speech())
            await pc.reply()
            await asyncio.sleep(0.1)  # the assistant aggregator takes the last reply in
        await pc.run(script)
    assert pc.errors == []
    server_events.no_errors()
    updated = server_events.of("session.updated")[-1]["session"]
    assert updated["audio"]["output"]["voice"] == (voice or "jm_kumo")
    transcript = server_events.of("conversation.item.input_audio_transcription.completed")[0]["transcript"]
    assert history(pc.context, "user") == ["Oi, tudo bem?", transcript]  # the spoken turn is in pipecat's context
    assert history(pc.context, "assistant") == ["Bom dia! Posso ajudar?"] * 2


async def test_pipecat_barge_in_truncates(fake_server, client_errors, server_events):
    replies = iter([LONG_REPLY, "Certo."])
    backends = fake_backends(llm=FakeLLM(lambda messages: next(replies), delay=0.03), tts=FakeTTS(rtf=0.3))
    async with fake_server(backends) as (url, _app):
        pc = Pipecat(url.split("/")[2], "alloy", "Conte uma história longa.")

        async def script(pc: Pipecat) -> None:
            from pipecat.frames.frames import LLMRunFrame
            await pc.worker.queue_frame(LLMRunFrame())
            while not server_events.of("response.output_audio.delta"):
                await asyncio.sleep(0.02)
            await pc.speak(speech())  # the user talks over the reply
            await pc.reply()  # the cancelled one
            await pc.reply()  # the answer to what the user said
        await pc.run(script)
    assert pc.errors == []
    server_events.no_errors()
    first = server_events.of("response.done")[0]["response"]
    assert first["status"] == "cancelled"
    truncated = server_events.of("conversation.item.truncated")
    assert truncated and truncated[0]["item_id"] == first["output"][0]["id"]  # pipecat reported what it played


@pytest.mark.model
async def test_pipecat_spoken_turn_with_the_real_models(real_server, client_errors):
    host, _app = real_server
    pc = Pipecat(host, "alloy", "Oi!")
    pc.timeout = 480.0

    async def script(pc: Pipecat) -> None:
        from pipecat.frames.frames import LLMRunFrame
        await pc.worker.queue_frame(LLMRunFrame())
        await pc.reply(timeout=240)
        await pc.speak(speech("d14_jm_kumo.wav"), pace=1.0)
        await pc.reply(timeout=240)
        await asyncio.sleep(0.1)
    await pc.run(script)
    assert pc.errors == []
    users, assistants = history(pc.context, "user"), history(pc.context, "assistant")
    assert len(users) == 2 and users[1], users  # the spoken question, transcribed, is in pipecat's context
    assert len(assistants) == 2 and all(assistants), assistants
