"""Configuration: TOML file + FALANTE_ env overrides, backends chosen by `kind`, clear errors."""

import pytest
from pydantic import ValidationError

from falante.config import CONFIG_ENV, LlamaCppSettings, OpenAISettings, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv(CONFIG_ENV, raising=False)


def test_default_is_the_embedded_cpu_profile():
    s = Settings()
    assert (s.asr.model, s.asr.device, s.llm.kind, s.llm.model, s.tts.kind) == (
        "bundled:whisper-base", "cpu", "llama-cpp", "bundled:qwen2.5-0.5b-instruct", "kokoro")


def test_shipped_profiles_load(monkeypatch):
    assert load_settings("config/default.toml").model_dump() == Settings().model_dump()
    gpu = load_settings("config/gpu.toml")
    assert gpu.asr.device == "cuda" and gpu.llm.device == "cuda" and 0 < gpu.llm.gpu_memory_utilization < 1


def test_toml_then_env_override(tmp_path, monkeypatch):
    path = tmp_path / "f.toml"
    path.write_text('[server]\nport = 9100\n[llm]\nkind = "llama-cpp"\nn_threads = 1\n')
    monkeypatch.setenv("FALANTE_SERVER__PORT", "9200")
    s = load_settings(path)
    assert s.server.port == 9200  # env wins over the file
    assert isinstance(s.llm, LlamaCppSettings) and s.llm.n_threads == 1
    monkeypatch.setenv("FALANTE_LLM__KIND", "openai")
    monkeypatch.setenv("FALANTE_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    s = Settings()
    assert isinstance(s.llm, OpenAISettings) and s.llm.base_url.endswith(":9/v1")


def test_bad_config_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[llm]\nkind = "gpt-9"\n')
    with pytest.raises(ValidationError, match="kind"):
        load_settings(path)
    path.write_text('[asr]\nfinal_tail_ms = -1\n')
    with pytest.raises(ValidationError, match="final_tail_ms"):
        load_settings(path)
    path.write_text('[server]\nprot = 1\n')
    with pytest.raises(ValidationError, match="prot"):
        load_settings(path)
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.toml")


def test_knowledge_file_is_off_by_default_and_set_by_the_example_profile(tmp_path):
    assert Settings().knowledge.file is None
    museum = load_settings("examples/museu.toml")
    assert museum.knowledge.file == "examples/museu.md" and museum.knowledge.top_k == 3
    from server.backends import build_knowledge
    kb = build_knowledge(museum)
    assert kb is not None and any("Horário" in s.title for s in kb.sections)
    kb.close()
    assert build_knowledge(Settings()) is None


def test_bad_knowledge_config_is_a_clear_error(tmp_path):
    path = tmp_path / "k.toml"
    path.write_text('[knowledge]\nfile = "no/such/facts.md"\n')
    with pytest.raises(ValidationError, match="knowledge file not found"):
        load_settings(path)
    path.write_text('[knowledge]\nfile = "examples/museu.md"\nmax_context_tokens = 1500\n')
    with pytest.raises(ValidationError, match="max_context_tokens"):
        load_settings(path)
    path.write_text('[knowledge]\nfile = "examples/museu.md"\ntop_n = 3\n')
    with pytest.raises(ValidationError, match="top_n"):
        load_settings(path)
