"""Stream a WAV file to a falante server with the official `openai` SDK; save the reply audio and avatar frames.

    .venv/bin/python examples/talk.py ../shared/data/ptbr-speech-dev/d09_jf_alpha.wav --out reply
    → reply.wav (24 kHz), reply.frames.json (avatar frames on the reply's audio clock), transcript on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from pathlib import Path

import numpy as np
from openai import AsyncOpenAI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from falante.audio import float_to_pcm16_bytes, read_wav, resample, write_wav

RATE = 24_000


async def talk(url: str, wav: Path, out: Path, token: str, voice: str | None) -> None:
    audio, rate = read_wav(wav)
    audio = np.concatenate([resample(audio, rate, RATE), np.zeros(RATE // 2, np.float32)])  # trailing silence
    client = AsyncOpenAI(api_key=token, websocket_base_url=url)
    reply, frames = bytearray(), []
    async with client.realtime.connect(model="falante", extra_query={"extensions": "falante"}) as conn:
        if voice:
            await conn.session.update(session={"type": "realtime", "audio": {"output": {"voice": voice}}})

        async def stream() -> None:  # real-time pace, 100 ms chunks, as a microphone would
            step = RATE // 10
            for i in range(0, len(audio), step):
                await conn.input_audio_buffer.append(audio=base64.b64encode(
                    float_to_pcm16_bytes(audio[i:i + step])).decode())
                await asyncio.sleep(0.1)

        sender = asyncio.create_task(stream())
        async for event in conn:
            if event.type == "conversation.item.input_audio_transcription.completed":
                print(f"you:     {event.transcript}")
            elif event.type == "response.output_audio.delta":
                reply += base64.b64decode(event.delta)
            elif event.type == "falante.avatar.frames":
                frames += event.to_dict()["frames"]
            elif event.type == "response.output_audio_transcript.done":
                print(f"falante: {event.transcript}")
            elif event.type == "error":
                print(f"error:   {event.error.code}: {event.error.message}", file=sys.stderr)
            elif event.type == "response.done":
                break
        sender.cancel()
    pcm = np.frombuffer(bytes(reply), dtype="<i2").astype(np.float32) / 32768
    write_wav(out.with_suffix(".wav"), pcm, RATE)
    out.with_suffix(".frames.json").write_text(json.dumps(frames))
    print(f"saved {out.with_suffix('.wav')} ({len(pcm) / RATE:.1f} s) and {len(frames)} avatar frames")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wav", type=Path)
    parser.add_argument("--url", default="ws://127.0.0.1:8000/v1")
    parser.add_argument("--out", type=Path, default=Path("reply"))
    parser.add_argument("--token", default="local", help="the server's auth_token, if it has one")
    parser.add_argument("--voice")
    args = parser.parse_args()
    asyncio.run(talk(args.url, args.wav, args.out, args.token, args.voice))


if __name__ == "__main__":
    main()
