"""Per-session rate limiting and server-wide admission; the numbers live in `LimitSettings`."""

from __future__ import annotations

import time


class TokenBucket:
    """Allow `rate` units/s with bursts of `burst`; `take(n)` says whether n units (default: one event) may pass.

    Also the audio budget: units are seconds of audio, `rate` the real-time factor a session may sustain.
    """

    def __init__(self, rate: float, burst: float, clock=time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, float(burst), clock
        self._tokens, self._last = float(burst), clock()

    def take(self, amount: float = 1.0) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= amount:
            self._tokens -= amount
            return True
        return False


class Admission:
    """Counts open sessions against `max_sessions`; the app refuses connections beyond it with a clear reason."""

    def __init__(self, max_sessions: int) -> None:
        self.max_sessions, self.active = max_sessions, 0

    def try_enter(self) -> bool:
        if self.active >= self.max_sessions:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active = max(0, self.active - 1)
