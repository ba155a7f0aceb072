"""semantic_vad's decision: how much silence ends this turn, given how finished the transcript sounds.

Why: a fixed silence either cuts off people who hesitate mid-sentence or answers finished questions late. After a
short silence the Listener decodes a speculative final; its end-of-turn probability picks the wait: a finished
phrase ends after `complete_ms`, anything else only at the hard cap `max_ms` (someone who stops mid-word still gets
an answer). Without a text signal (the openai remote backend, a detector error, an empty transcript) the wait is
plain timing, `timing_ms`. All waits are on the audio clock (samples of silence), never on wall time.
"""

from __future__ import annotations

import logging
import math

from falante.config import EagernessSettings
from falante.types import ASR_SAMPLE_RATE, EndOfTurnDetector

log = logging.getLogger("falante.endpoint")
MS = ASR_SAMPLE_RATE // 1000


class EndOfTurnPolicy:
    """One per session (cheap); the detector is the process-wide shared one, or None (timing only)."""

    def __init__(self, params: EagernessSettings, detector: EndOfTurnDetector | None) -> None:
        self.params = params
        self.detector = detector
        self.max_samples = params.max_ms * MS

    @property
    def scores(self) -> bool:
        """Whether a decision needs the speculative final's score (False: timing only)."""
        return self.detector is not None

    async def score(self, text: str) -> float | None:
        """The detector's end-of-turn probability of `text`; None when there is no usable text signal."""
        if self.detector is None or not text.strip():
            return None
        try:
            p = float(await self.detector.end_probability(text))
        except Exception:  # a failing detector degrades to timing, never ends a session
            log.exception("end-of-turn detector failed on %.60r", text)
            return None
        return None if math.isnan(p) else min(1.0, max(0.0, p))

    def decision(self, score: float | None) -> str:
        """"complete" (finished phrase), "incomplete" (wait for the cap) or "timing" (no text signal)."""
        if score is None:
            return "timing"
        return "complete" if score >= self.params.threshold else "incomplete"

    def wait_samples(self, score: float | None) -> int:
        """Silence (16 kHz samples after the speech end) that ends the turn for this score."""
        kind = self.decision(score)
        ms = {"timing": self.params.timing_ms, "complete": self.params.complete_ms}.get(kind, self.params.max_ms)
        return min(ms, self.params.max_ms) * MS
