"""A scripted stand-in for the falante server: real websockets on port 0, real avatar frames, TTS-like audio.

Why: the browser tests of the pages must not wait for (or load) the real models. The stand-in speaks the same
wire protocol the server does (OpenAI Realtime GA events + `falante.avatar.*`), serves `ui/static` at /static and
the kiosk at /kiosk from the same port, and records what the page sent so tests can assert on it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import mimetypes
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from avatar import Timeline, frames_to_wire, split_ipa
from avatar.visemes import is_vowel
from falante.audio import encode_pcm16_base64, pcm16_bytes_to_float
from falante.types import PhonemeTiming, SpeechChunk
from ui import STATIC_DIR

RATE = 24_000
DELTA_MS = 100
# "Olá! Tudo bem? Como posso ajudar?" in espeak-ng pt-br IPA (input for the TTS-like synthesizer below)
REPLY_IPA = "olˈa tˈudʊ bˈeɪŋ kˈomʊ pˈɔsʊ aʒudˈaɾ"


def tts_like(ipa: str, rate: int = RATE, lead_s: float = 0.08, tail_s: float = 0.25) -> SpeechChunk:
    """Speech-shaped audio with exact phoneme timings: voiced vowels (f0 + harmonics, soft attack), quiet
    fricative noise for consonants, silence for stops and pauses. Deterministic."""
    rng = np.random.default_rng(7)
    parts: list[np.ndarray] = [np.zeros(int(lead_s * rate), np.float32)]
    timings: list[PhonemeTiming] = []
    cursor = len(parts[0])
    for sym in split_ipa(ipa):
        if sym == "_":
            seg = np.zeros(int(0.12 * rate), np.float32)
        elif is_vowel(sym):
            n = int(0.13 * rate)
            t = np.arange(n) / rate
            f0 = 190 + 20 * np.sin(2 * np.pi * 3 * t)
            phase = 2 * np.pi * np.cumsum(f0) / rate
            wave = sum(np.sin(k * phase) / k for k in range(1, 6))
            env = np.minimum(1, np.minimum(t / 0.02, (t[-1] - t) / 0.02))
            seg = (0.25 * wave * env).astype(np.float32)
        elif sym[0] in "szʃʒfvxh":
            seg = (0.03 * rng.standard_normal(int(0.08 * rate))).astype(np.float32)
        else:
            seg = np.zeros(int(0.06 * rate), np.float32)
        timings.append(PhonemeTiming(sym, cursor, cursor + len(seg)))
        parts.append(seg)
        cursor += len(seg)
    parts.append(np.zeros(int(tail_s * rate), np.float32))
    return SpeechChunk(np.concatenate(parts), rate, tuple(t for t in timings if t.phoneme != "_"), "")


@dataclass
class StandIn:
    """Scripted server. `speech_turns`: how many heard utterances get a reply (the fake mic loops its clip)."""

    token: str | None = "sekret"
    transcript: str = "Boa noite, você pode me ajudar?"
    reply_text: str = "Olá! Tudo bem? Como posso ajudar?"
    speech_turns: int = 1
    pace: float = 2.0  # audio is sent this many times faster than real time (the client buffers it)
    barge_in_after_ms: int | None = None  # interrupt the next reply after this much audio was sent
    received: list[dict] = field(default_factory=list)
    heard_samples: int = 0
    heard_peak: float = 0.0
    connections: int = 0
    port: int = 0

    async def __aenter__(self) -> "StandIn":
        self._changed = asyncio.Condition()
        self._server = await serve(self._ws, "127.0.0.1", 0, process_request=self._http, max_size=1 << 20)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        await self._server.wait_closed()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_until(self, predicate, timeout: float = 5.0) -> None:
        """Block until `predicate()` holds for what the page has sent (no sleeps)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    def types(self) -> list[str]:
        return [e.get("type", "") for e in self.received]

    # ------------------------------------------------------------------------------------------ http
    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/v1/realtime":
            token = parse_qs(url.query).get("token", [None])[0]
            if self.token and token != self.token:
                return connection.respond(HTTPStatus.UNAUTHORIZED, "bad token\n")
            return None
        if url.path == "/kiosk":
            path = STATIC_DIR / "kiosk.html"
        elif url.path.startswith("/static/"):
            path = (STATIC_DIR / url.path[len("/static/"):]).resolve()
            if STATIC_DIR.resolve() not in path.parents:
                return connection.respond(HTTPStatus.FORBIDDEN, "forbidden\n")
        else:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if not path.is_file():
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        body = path.read_bytes()
        ctype = "text/javascript" if path.suffix == ".js" else (mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        if path.suffix == ".glb":
            ctype = "model/gltf-binary"
        headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")])
        return Response(200, "OK", headers, body)

    # ------------------------------------------------------------------------------------------ websocket
    async def _ws(self, ws: ServerConnection) -> None:
        self.connections += 1
        session = {"n": 0, "turns": 0, "speech": 0, "started": False, "task": None}
        await self._send(ws, {"type": "session.created", "session": {"type": "realtime"}})
        try:
            async for raw in ws:
                event = json.loads(raw)
                self.received.append(event)
                async with self._changed:
                    self._changed.notify_all()
                await self._on_event(ws, event, session)
        except ConnectionClosed:
            pass
        finally:
            if session["task"]:
                session["task"].cancel()
                await asyncio.wait([session["task"]])  # our own cancellation still propagates

    async def _send(self, ws: ServerConnection, event: dict) -> None:
        event.setdefault("event_id", f"evt_{id(event)}")
        await ws.send(json.dumps(event))

    async def _on_event(self, ws: ServerConnection, event: dict, s: dict) -> None:
        kind = event.get("type")
        if kind == "session.update":
            await self._send(ws, {"type": "session.updated", "session": event.get("session", {})})
        elif kind == "input_audio_buffer.append":
            audio = pcm16_bytes_to_float(base64.b64decode(event["audio"]))
            self.heard_samples += len(audio)
            peak = float(np.abs(audio).max()) if len(audio) else 0.0
            self.heard_peak = max(self.heard_peak, peak)
            if s["turns"] >= self.speech_turns:
                return
            s["speech"] = s["speech"] + len(audio) if peak > 0.02 else s["speech"]
            if s["speech"] >= 0.4 * RATE and not s["started"]:
                s["started"] = True
                await self._send(ws, {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "item_u1"})
            if s["started"] and s["speech"] >= 1.6 * RATE:
                s["turns"] += 1
                s["started"], s["speech"] = False, 0
                await self._user_turn(ws, s, f"item_u{s['turns']}")
        elif kind == "conversation.item.create":
            s["typed"] = event["item"]["content"][0].get("text", "")
        elif kind == "response.create":
            typed = s.pop("typed", None)
            text = f"Você escreveu: {typed}" if typed else self.reply_text
            s["task"] = asyncio.create_task(self._reply(ws, s, text))
        elif kind == "response.cancel":
            if s["task"]:
                s["task"].cancel()

    async def _user_turn(self, ws: ServerConnection, s: dict, item_id: str) -> None:
        await self._send(ws, {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1600, "item_id": item_id})
        await self._send(ws, {"type": "input_audio_buffer.committed", "item_id": item_id})
        words = self.transcript.split(" ")
        half = " ".join(words[: len(words) // 2])
        await self._send(ws, {"type": "conversation.item.input_audio_transcription.delta", "item_id": item_id,
                              "content_index": 0, "delta": half})
        await asyncio.sleep(0.3)  # a partial visible for a moment, like a real ASR would show it
        await self._send(ws, {"type": "conversation.item.input_audio_transcription.completed", "item_id": item_id,
                              "content_index": 0, "transcript": self.transcript})
        s["task"] = asyncio.create_task(self._reply(ws, s, self.reply_text))

    async def _reply(self, ws: ServerConnection, s: dict, text: str) -> None:
        s["n"] += 1
        rid, item = f"resp_{s['n']}", f"item_a{s['n']}"
        status = "completed"
        await self._send(ws, {"type": "response.created", "response": {"id": rid, "status": "in_progress"}})
        await self._send(ws, {"type": "response.output_item.added", "response_id": rid,
                              "item": {"id": item, "type": "message", "role": "assistant"}})
        await self._send(ws, {"type": "falante.avatar.state", "state": "speaking", "expression": "happy"})
        chunk = tts_like(REPLY_IPA)
        timeline = Timeline(30, RATE, 40.0)
        frames = timeline.frames_for(chunk, 0, RATE) + timeline.finish(len(chunk.audio))
        step = RATE * DELTA_MS // 1000
        try:
            await self._send(ws, {"type": "response.output_audio_transcript.delta", "response_id": rid, "item_id": item,
                                  "delta": text})
            for offset in range(0, len(chunk.audio), step):
                if self.barge_in_after_ms is not None and offset >= self.barge_in_after_ms * RATE // 1000:
                    self.barge_in_after_ms = None
                    status = "cancelled"
                    await self._send(ws, {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0,
                                          "item_id": "item_barge"})
                    break
                covered = [f for f in frames if offset <= f.sample < offset + step]
                if covered:
                    await self._send(ws, {"type": "falante.avatar.frames", "response_id": rid, "item_id": item,
                                          "fps": 30, "sample_rate": RATE, "frames": frames_to_wire(covered)})
                await self._send(ws, {"type": "response.output_audio.delta", "response_id": rid, "item_id": item,
                                      "delta": encode_pcm16_base64(chunk.audio[offset:offset + step])})
                await asyncio.sleep(DELTA_MS / 1000 / self.pace)
            else:
                tail = [f for f in frames if f.sample >= len(chunk.audio)]
                if tail:
                    await self._send(ws, {"type": "falante.avatar.frames", "response_id": rid, "item_id": item,
                                          "fps": 30, "sample_rate": RATE, "frames": frames_to_wire(tail)})
                await self._send(ws, {"type": "response.output_audio.done", "response_id": rid, "item_id": item})
                await self._send(ws, {"type": "response.output_audio_transcript.done", "response_id": rid,
                                      "item_id": item, "transcript": text})
        except asyncio.CancelledError:
            status = "cancelled"
            await self._send(ws, {"type": "response.done", "response": {"id": rid, "status": status}})
            raise
        await self._send(ws, {"type": "response.done", "response": {"id": rid, "status": status}})
