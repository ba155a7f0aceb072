"""The ears of falante: Silero VAD + streaming faster-whisper recognition.

Server wiring: one `FasterWhisperRecognizer` and one `SileroVadModel` per process (`load()` both at start-up),
one `Listener` per session; `transcribe_buffer` for manual-commit mode.
"""

from .listener import Listener, transcribe_buffer
from .resolve import ModelResolveError, resolve_model
from .vad import SileroVadModel, VadStream
from .whisper import FasterWhisperRecognizer

__all__ = ["FasterWhisperRecognizer", "Listener", "ModelResolveError", "SileroVadModel", "VadStream",
           "resolve_model", "transcribe_buffer"]
