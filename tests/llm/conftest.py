"""Shared fixtures for the LLM tests: one tiny random chat model per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.llm.llm_tiny_model import build_tiny_chat_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-qwen2"))
