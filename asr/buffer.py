"""Sample-addressed audio buffer for one session: append chunks, read any range by absolute sample offset.

Why: the listener needs "the audio from sample A to B" for partials and finals. Appending into a preallocated array
that grows by doubling (and compacts by dropping what is no longer needed) costs O(chunk) per append instead of the
O(utterance) of `np.concatenate` on every chunk.
"""

from __future__ import annotations

import numpy as np


class AudioBuffer:
    def __init__(self, capacity: int = 16_000 * 8) -> None:
        self._data = np.zeros(max(capacity, 1024), dtype=np.float32)
        self._origin = 0  # absolute sample of self._data[0]
        self._size = 0  # valid samples in self._data
        self._keep_from = 0  # absolute sample before which data may be dropped

    @property
    def start(self) -> int:
        """First absolute sample still held."""
        return self._origin

    @property
    def end(self) -> int:
        """Absolute sample after the last one appended (= total samples appended)."""
        return self._origin + self._size

    @property
    def capacity(self) -> int:
        return self._data.size

    def append(self, chunk: np.ndarray) -> None:
        n = chunk.size
        if self._size + n > self._data.size:
            self._compact()
            if self._size + n > self._data.size:
                grown = np.zeros(max(self._data.size * 2, self._size + n), dtype=np.float32)
                grown[: self._size] = self._data[: self._size]
                self._data = grown
        self._data[self._size : self._size + n] = chunk
        self._size += n

    def release_before(self, sample: int) -> None:
        """Audio before `sample` is no longer needed; it is dropped at the next compaction."""
        self._keep_from = max(self._keep_from, min(sample, self.end))

    def view(self, start: int, end: int) -> np.ndarray:
        """Copy of samples [start, end) (clamped to what is held)."""
        lo = max(start, self._origin) - self._origin
        hi = min(end, self.end) - self._origin
        if hi <= lo:
            return np.zeros(0, dtype=np.float32)
        return self._data[lo:hi].copy()

    def _compact(self) -> None:
        drop = self._keep_from - self._origin
        if drop <= 0:
            return
        self._data[: self._size - drop] = self._data[drop : self._size]
        self._size -= drop
        self._origin += drop
