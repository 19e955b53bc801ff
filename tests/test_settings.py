"""Settings: read only at the edge, from RAG_* variables and .env, validated in one place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.core.errors import InputError
from rag.core.settings import Settings, env_names

README = Path(__file__).resolve().parents[1] / "README.md"


def test_plain_construction_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_PORT", "9999")
    assert Settings().port == 7860
    assert Settings.from_env(env_file=None).port == 9999


def test_env_file_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in env_names().values():
        monkeypatch.delenv(var, raising=False)
    env = tmp_path / ".env"
    env.write_text("RAG_TOP_K=7\nRAG_LLM_TIMEOUT=5\nRAG_SYNONYMS=none\n", "utf-8")
    monkeypatch.setenv("RAG_TOP_K", "8")  # the environment beats the file
    s = Settings.from_env(env_file=env, index_dir=tmp_path / "ix")
    assert (s.top_k, s.llm_timeout_s, s.synonyms, s.index_dir) == (8, 5.0, "none", tmp_path / "ix")


def test_empty_variables_are_unset() -> None:
    assert Settings.from_env({"RAG_PORT": "", "RAG_CHROMA_URL": ""}).chroma_url is None


@pytest.mark.parametrize(
    ("env", "var"),
    [
        ({"RAG_PORT": "http"}, "RAG_PORT"),
        ({"RAG_TOP_K": "0"}, "RAG_TOP_K"),
        ({"RAG_EMBEDDER": "word2vec"}, "RAG_EMBEDDER"),
        ({"RAG_CHROMA_URL": "localhost:8000"}, "RAG_CHROMA_URL"),
        ({"RAG_LLM_TIMEOUT": "-1"}, "RAG_LLM_TIMEOUT"),
    ],
)
def test_bad_values_name_their_variable(env: dict[str, str], var: str) -> None:
    with pytest.raises(InputError, match=var):
        Settings.from_env(env)


def test_settings_are_frozen_and_copies_are_validated() -> None:
    s = Settings()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        s.port = 1  # type: ignore[misc]
    assert s.with_changes(top_k=3).top_k == 3
    with pytest.raises(InputError, match="RAG_TOP_K"):
        s.with_changes(top_k=0)


def test_every_setting_is_documented_in_the_readme() -> None:
    documented = set(re.findall(r"`(RAG_[A-Z0-9_]+)`", README.read_text("utf-8")))
    assert set(env_names().values()) <= documented, set(env_names().values()) - documented
