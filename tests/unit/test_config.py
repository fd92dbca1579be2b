from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.config import Settings


def test_defaults_use_sqlite_in_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", "/tmp/ragdata")
    settings = Settings()
    assert settings.resolved_database_url == "sqlite:////tmp/ragdata/rag.sqlite3"
    assert settings.llm.embedded and settings.llm.temperature == 0.0 and settings.port == 8000


def test_flat_environment_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://vllm:8000/v1/")
    monkeypatch.setenv("RAG_LLM_MODEL", "jondurbin/bagel-8x7b-v0.2")
    monkeypatch.setenv("RAG_LLM_TEMPERATURE", "0.2")
    monkeypatch.setenv("RAG_DATABASE_URL", "postgresql+psycopg://u@db/rag")
    monkeypatch.setenv("RAG_PORT", "9000")
    settings = Settings()
    assert settings.llm.base_url == "http://vllm:8000/v1"
    assert settings.llm.model == "jondurbin/bagel-8x7b-v0.2"
    assert settings.llm.temperature == 0.2 and not settings.llm.embedded
    assert settings.resolved_database_url == "postgresql+psycopg://u@db/rag"
    assert settings.port == 9000


def test_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CHUNKING__MAX_TOKENS", "120")
    assert Settings().chunking.max_tokens == 120


@pytest.mark.parametrize("temperature", ["0.5", "-0.1"])
def test_temperature_is_kept_low_for_contextual_qa(
    monkeypatch: pytest.MonkeyPatch, temperature: str
) -> None:
    monkeypatch.setenv("RAG_LLM_TEMPERATURE", temperature)
    with pytest.raises(ValidationError, match="temperature"):
        Settings()


def test_overlap_must_be_smaller_than_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CHUNKING__MAX_TOKENS", "50")
    monkeypatch.setenv("RAG_CHUNKING__OVERLAP_TOKENS", "50")
    with pytest.raises(ValidationError, match="overlap_tokens"):
        Settings()


def test_prepared_models_are_shared_by_every_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_MODELS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/cache")
    first, second = Settings(data_dir=Path("/x")), Settings(data_dir=Path("/y"))
    assert first.model_cache_dir == second.model_cache_dir == Path("/cache/contextual-rag/models")
    assert first.embedded_generator_dir == Path(
        "/cache/contextual-rag/models/smollm2-135m-instruct-f32"
    )


def test_models_dir_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_MODELS_DIR", "/models")
    assert Settings(data_dir=Path("/x")).model_cache_dir == Path("/models")
