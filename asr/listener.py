"""`Listener`: one per session. 16 kHz chunks in → SpeechStarted, partial Transcripts, SpeechStopped, final Transcript.

Why this shape:
- Audio intake never waits for the model: decodes run as tasks, and the event loop below waits on "next chunk" and
  "a decode finished" together. Events are yielded in order; events after a SpeechStopped wait for its final.
- Partials: LocalAgreement-2 over a growing window, decoded at most every `partial_interval_ms` of audio (and no
  sooner than twice the last partial's decode time, so a slow shared model stays half idle), one in flight per
  session. A partial's text = the committed words (two consecutive decodes agreed; never revised by later
  partials) + the newest decode's unconfirmed tail (may change), so the first words show up after one decode.
  Windows longer than `partial_window_s` are cut at a pause; the cut piece gets a final-quality decode in the
  background, so finals stay fast at any length.
- Finals: decoded speculatively once `speculative_final_ms` of silence is seen, so the text is usually ready when the
  end-of-turn silence (`vad.silence_ms`) completes; dropped if the user speaks again. The decode sees
  `final_tail_ms` after the speech end: the audio that has arrived, then digital silence, so a longer tail (better
  sentence ends for Whisper) never delays the launch.
- semantic_vad (`end_of_turn` policy, asr/endpoint.py): at the same silence a cheap transcript is scored by the
  end-of-turn detector — the last partial when it was decoded up to the speech end, else a draft decode (greedy, an
  encoder window fitted to the speech, ahead of the final in the model's queue) — and the turn ends when the
  silence reaches the wait that score calls for. The accurate final still decodes for the transcript; the VAD's own
  silence (`vad.silence_ms`) is only the hard cap. Why not score the final itself: on 2 CPU cores its beam-8 decode
  (with temperature fallback) takes longer than the whole wait a finished phrase deserves. Without a policy
  (server_vad) nothing here changes.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field, replace

import numpy as np

from falante.audio import resample
from falante.config import FasterWhisperSettings
from falante.types import (
    ASR_SAMPLE_RATE,
    ListenerEvent,
    SpeculativeFinal,
    SpeechRecognizer,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    Transcript,
)

from .buffer import AudioBuffer
from .endpoint import EndOfTurnPolicy
from .vad import SileroVadModel, check_audio

MS = ASR_SAMPLE_RATE // 1000
IDLE_KEEP = 2 * ASR_SAMPLE_RATE  # audio kept while nobody speaks (prefix padding + VAD onset look-back)
DRAFT_TAIL_MS = 200  # audio after the speech end that a draft decode sees (Whisper finishes the last word)
_END = object()


def _key(word: str) -> str:
    return re.sub(r"[^\w]", "", word.lower())


@dataclass
class _Utterance:
    start: int  # SpeechStarted.sample
    audio_start: int  # start minus prefix padding
    window_start: int  # start of the audio the partials decode
    pieces: list[asyncio.Task] = field(default_factory=list)  # final-quality decodes of cut windows
    placeholders: list[str] = field(default_factory=list)  # partial text of each piece until its decode is done
    previous: list[str] = field(default_factory=list)  # words of the last partial hypothesis
    committed: list[str] = field(default_factory=list)  # agreed words of the current window
    partial_task: asyncio.Task | None = None
    last_partial_at: int = -(1 << 62)  # sample at which the last partial was launched
    partial_started: float = 0.0  # loop time of that launch
    partial_gap: int = 0  # samples to wait between launches: 2 × the last decode's duration (model half idle)
    final_task: asyncio.Task | None = None  # speculative decode of the last window
    final_end: int = 0  # speech end that final_task covers
    heard_words: list[str] = field(default_factory=list)  # the last finished partial decode's words (whole hypothesis)
    heard_end: int = -1  # the audio end that decode saw
    draft_task: asyncio.Task | None = None  # semantic_vad: cheap decode of the window for the end-of-turn score
    score_task: asyncio.Task | None = None  # semantic_vad: end-of-turn score of the draft transcript
    scored_text: str = ""  # the text score_task scores
    announced: bool = False  # a SpeculativeFinal went out for the current silence
    emitted: str = ""

    def tasks(self) -> list[asyncio.Task]:
        tasks = (*self.pieces, self.partial_task, self.final_task, self.draft_task, self.score_task)
        return [t for t in tasks if t is not None]


class Listener:
    """Cheap to construct (one per session); the recognizer and the VAD model are the shared, loaded ones."""

    def __init__(
        self, recognizer: SpeechRecognizer, vad_model: SileroVadModel, settings: FasterWhisperSettings,
        *, language: str | None = None, end_of_turn: EndOfTurnPolicy | None = None,
    ) -> None:
        self.recognizer = recognizer
        self.settings = settings
        self.language = language or settings.language
        self.vad = vad_model.stream(settings.vad)
        self.audio = AudioBuffer()
        self.prefix = settings.vad.prefix_padding_ms * MS
        self.partial_every = max(settings.partial_interval_ms, 100) * MS
        self.max_window = int(max(settings.partial_window_s, 2.0) * ASR_SAMPLE_RATE)
        self.speculate_after = max(settings.speculative_final_ms, 32) * MS
        self.final_tail = settings.final_tail_ms * MS
        self.draft_tail = min(DRAFT_TAIL_MS * MS, self.final_tail)
        self.end_of_turn = end_of_turn
        self._utt: _Utterance | None = None
        self._out: deque[ListenerEvent | asyncio.Task] = deque()  # tasks stand for finals not yet decoded

    # ------------------------------------------------------------------ public API
    @property
    def stable_text(self) -> str:
        """Words of the current utterance that later partials will not change (append-only deltas for clients).

        Read it right after a partial Transcript is yielded: the generator is suspended, so the two agree.
        """
        utt = self._utt
        if utt is None:
            return ""
        return " ".join(t for t in (*utt.placeholders, " ".join(utt.committed)) if t)

    def reset(self) -> None:
        """Drop the current utterance and everything not yet yielded (e.g. input_audio_buffer.clear)."""
        if self._utt is not None:
            for task in self._utt.tasks():
                task.cancel()
        for item in self._out:
            if isinstance(item, asyncio.Task):
                item.cancel()
        self._out.clear()
        self._utt = None
        self.vad.drop_turn()
        self.audio.release_before(self.audio.end - self.prefix)

    async def events(self, chunks: AsyncIterator[np.ndarray]) -> AsyncIterator[ListenerEvent]:
        """Consume 16 kHz float32 chunks until `chunks` ends; yield events in order. Cancelling stops all decodes."""
        source = aiter(chunks)
        reader: asyncio.Task | None = None
        try:
            while True:
                while self._out:  # yield what is ready, in order
                    head = self._out[0]
                    if isinstance(head, asyncio.Task):
                        if not head.done():
                            break
                        self._out.popleft()
                        if not head.cancelled():
                            yield head.result()
                    else:
                        yield self._out.popleft()
                if reader is None:
                    reader = asyncio.ensure_future(_next(source))
                waits = {reader}
                if self._utt is not None and self._utt.partial_task is not None:
                    waits.add(self._utt.partial_task)
                if self._utt is not None and self._utt.score_task is not None and not self._utt.score_task.done():
                    waits.add(self._utt.score_task)
                if self._out and isinstance(self._out[0], asyncio.Task):
                    waits.add(self._out[0])
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if self._utt is not None and self._utt.partial_task in done:
                    self._partial_done()
                if self._utt is not None and self._utt.score_task in done:
                    self._maybe_end()  # the score arrived after enough silence: end now
                if reader in done:
                    chunk = reader.result()
                    reader = None
                    if chunk is _END:
                        break
                    self._feed(chunk)
            for event in self.vad.flush():  # input ended: close an open turn
                self._on_vad(event)
            while self._out:
                head = self._out.popleft()
                if isinstance(head, asyncio.Task):
                    if not head.cancelled():
                        yield await head
                else:
                    yield head
        finally:
            if reader is not None:
                reader.cancel()
            self.reset()

    # ------------------------------------------------------------------ audio intake (synchronous, fast)
    def _feed(self, chunk: np.ndarray) -> None:
        chunk = check_audio(chunk, "listener chunk")
        self.audio.append(chunk)
        for event in self.vad.process(chunk):
            self._on_vad(event)
        utt = self._utt
        if utt is None:
            self.audio.release_before(self.audio.end - IDLE_KEEP)
            return
        if self.vad.in_speech and self.vad.silence_run == 0:
            if utt.final_task is not None:  # the user went on speaking: the speculative final is stale
                utt.final_task.cancel()
                utt.final_task = None
            for task in (utt.draft_task, utt.score_task):
                if task is not None:
                    task.cancel()
            utt.draft_task = utt.score_task = None
            if utt.announced:  # a reply prepared on the speculative final must go
                utt.announced = False
                self._out.append(SpeechResumed(self.audio.end))
            self._maybe_cut(utt)
            self._maybe_partial(utt)
        elif utt.final_task is None and self.vad.silence_run >= self.speculate_after and self.vad.speech_end is not None:
            if self.end_of_turn is not None and self.end_of_turn.scores:
                self._launch_draft(utt, self.vad.speech_end)  # first: the decision waits on it
            self._launch_final(utt, self.vad.speech_end)
        self._maybe_end()

    def _on_vad(self, event: SpeechStarted | SpeechStopped) -> None:
        if isinstance(event, SpeechStarted):
            audio_start = max(event.sample - self.prefix, self.audio.start, 0)
            self._utt = _Utterance(start=event.sample, audio_start=audio_start, window_start=audio_start)
            self._out.append(event)
            return
        utt = self._utt
        if self.end_of_turn is not None and event.decision == "silence":  # the VAD's silence is semantic_vad's cap
            score = _result(utt.score_task) if utt is not None else None
            event = replace(event, decision="max_silence", score=score,
                            waited_ms=self.end_of_turn.max_samples // MS)
        self._out.append(event)
        if utt is None:  # reset() dropped it
            return
        if utt.partial_task is not None:
            utt.partial_task.cancel()
            utt.partial_task = None
        if utt.draft_task is not None and not utt.draft_task.done():
            utt.draft_task.cancel()  # the turn has ended: nothing waits for its decision any more
        if utt.final_task is None or utt.final_end != event.sample:
            if utt.final_task is not None:
                utt.final_task.cancel()
            self._launch_final(utt, event.sample)
        self._out.append(asyncio.ensure_future(self._finish(utt, utt.final_task, event.sample)))
        self._utt = None
        self.audio.release_before(self.audio.end - IDLE_KEEP)

    # ------------------------------------------------------------------ semantic_vad
    def _maybe_end(self) -> None:
        """semantic_vad: end the turn once the silence reaches the wait the speculative final's score calls for."""
        policy, utt = self.end_of_turn, self._utt
        if policy is None or utt is None or not self.vad.in_speech:
            return
        silence = self.vad.silence_run
        if silence < self.speculate_after:
            return
        score = None
        if policy.scores:
            if utt.score_task is None or not utt.score_task.done():
                return  # not scored yet: the VAD's hard cap still ends the turn
            score = _result(utt.score_task)
            self._announce(utt)
        if silence < policy.wait_samples(score):
            return
        stopped = self.vad.end_turn()
        if stopped is not None:
            self._on_vad(replace(stopped, decision=policy.decision(score), score=score, waited_ms=silence // MS))

    def _announce(self, utt: _Utterance) -> None:
        """A speculative final scored as finished: say so, so the session can prepare the reply."""
        score = _result(utt.score_task)
        if utt.announced or self.end_of_turn is None or self.end_of_turn.decision(score) != "complete":
            return
        utt.announced = True
        self._out.append(SpeculativeFinal(utt.scored_text, utt.final_end))

    def _launch_draft(self, utt: _Utterance, speech_end: int) -> None:
        """semantic_vad: the cheapest transcript up to the speech end, and its score.

        The last partial serves when its decode saw the speech end (nothing to decode); otherwise a draft decode of
        the window (+ DRAFT_TAIL_MS: what arrived, then digital silence) runs ahead of the final."""
        if utt.heard_end >= speech_end and utt.heard_words:
            utt.score_task = asyncio.ensure_future(self._score(utt, " ".join(utt.heard_words)))
            return
        if utt.partial_task is not None and utt.last_partial_at >= speech_end:  # in flight, and it saw the end
            utt.score_task = asyncio.ensure_future(self._score(utt, asyncio.shield(utt.partial_task)))
            return
        end = min(speech_end + self.draft_tail, self.audio.end)
        audio = self.audio.view(utt.window_start, end)
        missing = speech_end + self.draft_tail - end
        if missing > 0:
            audio = np.concatenate([audio, np.zeros(missing, dtype=np.float32)])
        utt.draft_task = asyncio.ensure_future(self.recognizer.transcribe(audio, language=self.language, draft=True))
        utt.score_task = asyncio.ensure_future(self._score(utt, utt.draft_task))

    async def _score(self, utt: _Utterance, window: Awaitable[str] | str) -> float | None:
        """The end-of-turn score of the draft transcript: cut pieces (their finals, else their partial text) + the
        window's draft. Pieces are not awaited: the decision must not wait for final-quality decodes."""
        assert self.end_of_turn is not None
        text = window if isinstance(window, str) else await window
        pieces = [p.result() if p.done() and not p.cancelled() and p.exception() is None else ph
                  for p, ph in zip(utt.pieces, utt.placeholders)]
        utt.scored_text = " ".join(t.strip() for t in (*pieces, text) if t.strip())
        return await self.end_of_turn.score(utt.scored_text)

    # ------------------------------------------------------------------ decodes
    def _launch_final(self, utt: _Utterance, speech_end: int) -> None:
        # a running partial is left alone: the speech may go on, and the recognizer runs finals first anyway
        end = min(speech_end + self.final_tail, self.audio.end)
        audio = self.audio.view(utt.window_start, end)
        missing = speech_end + self.final_tail - end  # tail not yet heard: the VAD already calls it silence
        if missing > 0:
            audio = np.concatenate([audio, np.zeros(missing, dtype=np.float32)])
        utt.final_task = asyncio.ensure_future(self.recognizer.transcribe(audio, language=self.language))
        utt.final_end = speech_end

    async def _finish(self, utt: _Utterance, last: asyncio.Task, speech_end: int) -> Transcript:
        texts = [await piece for piece in utt.pieces]
        texts.append(await last)
        text = " ".join(t.strip() for t in texts if t.strip())
        return Transcript(text=text, final=True, start_sample=utt.audio_start, end_sample=speech_end)

    def _maybe_partial(self, utt: _Utterance) -> None:
        now = self.audio.end
        if not self.settings.partials or utt.partial_task is not None:
            return
        if now - utt.last_partial_at < max(self.partial_every, utt.partial_gap):
            return
        if now - utt.start < self.partial_every:
            return
        audio = self.audio.view(utt.window_start, now)
        utt.partial_task = asyncio.ensure_future(
            self.recognizer.transcribe(audio, language=self.language, partial=True)
        )
        utt.last_partial_at = now
        utt.partial_started = asyncio.get_running_loop().time()

    def _partial_done(self) -> None:
        utt = self._utt
        assert utt is not None and utt.partial_task is not None
        task, utt.partial_task = utt.partial_task, None
        if task.cancelled():
            return
        # a slow model gets idle time between partials, so a final rarely waits behind one (CPU, many sessions)
        utt.partial_gap = int(2 * (asyncio.get_running_loop().time() - utt.partial_started) * ASR_SAMPLE_RATE)
        words = task.result().split()
        utt.heard_words, utt.heard_end = words, utt.last_partial_at
        agree = 0
        for a, b in zip(utt.previous, words):
            if _key(a) != _key(b):
                break
            agree += 1
        utt.previous = words
        n = len(utt.committed)
        extends = [_key(w) for w in words[:n]] == [_key(w) for w in utt.committed]
        if extends and agree > n:  # committed words are never revised, only extended
            utt.committed = utt.committed + words[n:agree]
        tail = words[len(utt.committed):] if extends else []
        if tail and tail[-1].endswith(("...", "…", "-")):
            tail = tail[:-1]  # a word Whisper saw cut off by the window edge
        pieces = [p.result() if p.done() and not p.cancelled() else ph for p, ph in zip(utt.pieces, utt.placeholders)]
        text = " ".join(t for t in (*pieces, " ".join(utt.committed + tail)) if t)
        if text and text != utt.emitted:
            utt.emitted = text
            self._out.append(Transcript(text=text, final=False, start_sample=utt.audio_start, end_sample=utt.last_partial_at))

    def _maybe_cut(self, utt: _Utterance) -> None:
        """Bound the partial window: cut at the latest pause (or here), decode the piece at final quality."""
        now = self.audio.end
        if now - utt.window_start < self.max_window:
            return
        pause = self.vad.last_pause
        cut = pause if pause is not None and pause > utt.window_start + self.max_window // 2 else now
        piece = self.audio.view(utt.window_start, cut)
        utt.pieces.append(asyncio.ensure_future(self.recognizer.transcribe(piece, language=self.language)))
        utt.placeholders.append(" ".join(utt.committed))
        utt.window_start = cut
        utt.previous, utt.committed = [], []
        utt.heard_words, utt.heard_end = [], -1
        if utt.partial_task is not None:
            utt.partial_task.cancel()
            utt.partial_task = None
        self.audio.release_before(cut)


def _result(task: asyncio.Task | None) -> float | None:
    if task is None or not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()


async def _next(source: AsyncIterator[np.ndarray]):
    try:
        return await anext(source)
    except StopAsyncIteration:
        return _END


async def transcribe_buffer(
    recognizer: SpeechRecognizer, audio: np.ndarray, *, sample_rate: int = ASR_SAMPLE_RATE,
    language: str | None = None,
) -> Transcript:
    """Manual-commit mode (turn detection off): resample a committed buffer to 16 kHz and transcribe it whole."""
    audio = check_audio(audio, "committed audio")
    if sample_rate != ASR_SAMPLE_RATE:
        audio = resample(audio, sample_rate, ASR_SAMPLE_RATE)
    text = await recognizer.transcribe(audio, language=language)
    return Transcript(text=text, final=True, start_sample=0, end_sample=int(audio.size))
