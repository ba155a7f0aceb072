"""A user's pt_BR Piper voice (piper-tts 1.8, VITS ONNX) with the model's own per-phoneme durations.

Why: Piper voices such as pt_BR-faber-medium are small, fast and natural. Piper can expose its duration tensor
(`w_ceil`) as an output (patched in memory; needs `onnx`); then the avatar gets exact timings, otherwise the
energy-refined estimator. piper-tts is GPL-3.0: it is an optional extra (`pip install falante[piper]`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from falante.config import PiperSettings
from falante.types import SpeechChunk
from tts.base import PieceSynthesizer
from tts.segment import fit_pieces
from tts.timing import SIL, estimate_samples, to_timings, trim_to_energy

__all__ = ["PiperError", "PiperSynthesizer"]

log = logging.getLogger(__name__)


class PiperError(RuntimeError):
    """The Piper voice cannot be loaded; the message names the fix."""


@dataclass(frozen=True)
class _Piece:
    text: str
    symbols: tuple[str, ...]  # one entry per phoneme (SIL for the BOS/EOS pads)
    groups: tuple[int, ...]  # number of phoneme ids each symbol produced (its own ids + the PAD after it)
    ids: tuple[int, ...]


def _session_bytes(model: Path, alignments: bool) -> tuple[str | bytes, bool]:
    """The model (patched in memory to output per-id durations when possible) and whether it has them."""
    if not alignments:
        return str(model), False
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError:
        log.warning("onnx not installed: Piper phoneme timings will be estimated (pip install onnx==1.23.2)")
        return str(model), False
    graph = onnx.load(str(model))
    try:
        add_alignment_output(graph)
    except ValueError as exc:  # already patched (fine) or no Ceil tensor (old export: estimate)
        already = "already" in str(exc)
        return str(model), already
    return graph.SerializeToString(), True


class PiperSynthesizer(PieceSynthesizer):
    """Shared Piper voice; multi-speaker voices expose their speakers as voices."""

    def __init__(self, settings: PiperSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or PiperSettings()
        self.sample_rate = 22_050
        self.has_durations = False
        self._voice = None
        self._names: list[str] = []

    def _load(self) -> None:
        try:
            import onnxruntime as ort
            from piper.config import PiperConfig
            from piper.voice import PiperVoice
        except ImportError as exc:
            raise PiperError("the Piper backend needs piper-tts: pip install piper-tts==1.8.0") from exc
        model = Path(self.settings.model).expanduser()
        if not self.settings.model or model.suffix != ".onnx" or not model.is_file():
            raise PiperError(f"tts.model = {self.settings.model!r} is not an existing Piper .onnx voice; download "
                             "one (e.g. pt_BR-faber-medium.onnx + .onnx.json) and point tts.model at it")
        config_path = Path(f"{model}.json")
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise PiperError(f"{config_path} is missing: a Piper voice needs its .onnx.json beside it") from None
        except (ValueError, KeyError) as exc:
            raise PiperError(f"{config_path} is not a Piper voice config: {exc!r}") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.settings.threads
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if self.settings.device == "cuda" \
            else ["CPUExecutionProvider"]
        source, self.has_durations = _session_bytes(model, self.settings.alignments)
        try:
            session = ort.InferenceSession(source, sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises untyped errors for corrupt files
            raise PiperError(f"cannot load Piper voice {model}: {exc}") from exc
        self.has_durations = self.has_durations and len(session.get_outputs()) > 1
        self._voice = PiperVoice(session=session, config=config)
        self.sample_rate = config.sample_rate
        self._names = sorted(config.speaker_id_map, key=config.speaker_id_map.get) or [model.stem]
        self.default_voice = self._names[0]

    def voices(self) -> list[str]:
        return list(self._names)

    # ------------------------------------------------------------------------------------------ blocking work
    def _phonemes(self, text: str) -> list[str]:
        return [ph for sentence in self._voice.phonemize(text) for ph in sentence]

    def _plan(self, sentence: str) -> list[_Piece]:
        from piper.const import BOS, EOS, PAD

        id_map = self._voice.config.phoneme_id_map
        out = []
        for text, phonemes in fit_pieces(sentence, self._phonemes, len, self.settings.max_phonemes):
            pad = list(id_map[PAD])
            symbols, groups, ids = [SIL], [len(id_map[BOS]) + len(pad)], [*id_map[BOS], *pad]
            for ph in phonemes:
                if ph in id_map:  # piper drops unknown phonemes the same way (with a warning)
                    symbols.append(ph)
                    groups.append(len(id_map[ph]) + len(pad))
                    ids += [*id_map[ph], *pad]
            symbols.append(SIL)
            groups.append(len(id_map[EOS]))
            ids += id_map[EOS]
            if len(symbols) > 2:
                out.append(_Piece(text, tuple(symbols), tuple(groups), tuple(ids)))
        return out

    def _render(self, piece: _Piece, voice: str | None, speed: float) -> SpeechChunk:
        from piper.config import SynthesisConfig

        config = self._voice.config
        syn = SynthesisConfig(speaker_id=config.speaker_id_map.get(voice) if voice else None,
                              length_scale=config.length_scale / (speed * self.settings.speed))
        result = self._voice.phoneme_ids_to_audio(list(piece.ids), syn, include_alignments=self.has_durations)
        audio, id_samples = result if isinstance(result, tuple) else (result, None)
        audio = np.clip(np.asarray(audio, dtype=np.float32).ravel(), -1.0, 1.0)
        if id_samples is not None and len(id_samples) == len(piece.ids):
            edges = np.cumsum([0, *piece.groups])
            samples = [int(np.sum(id_samples[a:b])) for a, b in zip(edges[:-1], edges[1:])]
        else:
            samples = estimate_samples(list(piece.symbols), audio, self.sample_rate)
        timings = trim_to_energy(to_timings(list(piece.symbols), samples, len(audio), self.sample_rate // 10),
                                 audio, self.sample_rate)
        return SpeechChunk(audio=audio, sample_rate=self.sample_rate, phonemes=timings, text=piece.text)
