"""The on-disk index: immutable generations swapped atomically.

    index_dir/
      current -> gen-<stamp>      symlink, replaced atomically by os.replace
      gen-<stamp>/manifest.json   documents, embedder, tokenizer
      gen-<stamp>/chunks.jsonl    every chunk (the table both retrievers index)
      gen-<stamp>/bm25/           bm25s files, rows in chunks.jsonl order
      gen-<stamp>/chroma/         Chroma persistent store (embedded mode)
      embcache.sqlite             document vectors by content hash, shared by generations

A reader resolves `current` once and keeps using that generation; an ingest builds the next
generation aside and swaps the link, so a failure or a kill never harms the readable index.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .embed import Embedder
from .errors import IndexMissingError, StoreError
from .settings import Settings
from .store import BM25Store, CachedEmbedder, ChromaStore
from .tokenize import get_tokenizer
from .types import Chunk

MANIFEST = "manifest.json"
CURRENT = "current"


def chroma_client(settings: Settings, path: Path | None) -> Any:
    """Embedded persistent client at `path`, or the HTTP client in server mode; telemetry off."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    cs = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_url:
            from urllib.parse import urlparse

            u = urlparse(settings.chroma_url)
            return chromadb.HttpClient(
                host=u.hostname or "127.0.0.1", port=u.port or 8000, ssl=u.scheme == "https", settings=cs
            )
        assert path is not None
        return chromadb.PersistentClient(path=str(path), settings=cs)
    except Exception as e:  # noqa: BLE001
        raise StoreError(f"无法连接向量库 (cannot open Chroma: {e})") from e


def current_generation(root: Path) -> Path | None:
    link = root / CURRENT
    if not link.is_symlink() and not link.exists():
        return None
    target = link.resolve()
    return target if (target / MANIFEST).is_file() else None


def swap_current(root: Path, gen: Path) -> None:
    tmp = root / f".current-{os.getpid()}-{time.monotonic_ns()}"
    os.symlink(gen.name, tmp)
    os.replace(tmp, root / CURRENT)


def cleanup_generations(root: Path, keep: int = 2) -> None:
    """Remove old and half-built generations, keeping the current one and its predecessor
    (an app process may still be reading it)."""
    cur = current_generation(root)
    gens = sorted(p for p in root.glob("gen-*") if p.is_dir())
    done = [g for g in gens if (g / MANIFEST).is_file()]
    keepers = {cur} | set(done[-keep:])
    for g in gens:
        if g not in keepers:
            shutil.rmtree(g, ignore_errors=True)


@dataclass
class Index:
    """A loaded, read-only generation."""

    root: Path
    gen: Path
    manifest: dict[str, Any]
    chunks: list[Chunk]
    bm25: BM25Store
    vectors: ChromaStore
    embedder: Embedder
    row_of: dict[str, int] = field(default_factory=dict)
    district_masks: dict[str, np.ndarray] = field(default_factory=dict)

    @staticmethod
    def open(settings: Settings, embedder: Embedder) -> Index:
        root = Path(settings.index_dir)
        gen = current_generation(root)
        if gen is None:
            raise IndexMissingError(
                f"索引不存在：请先运行 rag ingest (no index at {root}: run `rag ingest PATH` first)"
            )
        return Index.open_generation(settings, embedder, gen)

    @staticmethod
    def open_generation(settings: Settings, embedder: Embedder, gen: Path) -> Index:
        try:
            manifest = json.loads((gen / MANIFEST).read_text("utf-8"))
            with open(gen / "chunks.jsonl", encoding="utf-8") as f:
                chunks = [Chunk.from_json(json.loads(line)) for line in f if line.strip()]
        except (OSError, ValueError, KeyError) as e:
            raise StoreError(f"索引已损坏 (index at {gen} is unreadable: {e})") from e
        if manifest.get("embedder") and manifest["embedder"] != embedder.name:
            raise StoreError(
                f"索引由 {manifest['embedder']} 生成，与当前嵌入模型 {embedder.name} 不一致，请重建索引 "
                f"(index was built with {manifest['embedder']}, not {embedder.name}: re-ingest into a new --index)"
            )
        tok = get_tokenizer(manifest.get("bm25_tokens", settings.bm25_tokens))
        bm25 = BM25Store.load(gen / "bm25", tok)
        collection = manifest.get("collection", "zhengce-chunks")
        client = chroma_client(settings, gen / "chroma")
        vectors = ChromaStore(client, embedder, collection)
        idx = Index(root=gen.parent, gen=gen, manifest=manifest, chunks=chunks, bm25=bm25, vectors=vectors, embedder=embedder)
        idx.row_of = {c.id: i for i, c in enumerate(chunks)}
        for d in idx.districts:
            idx.district_masks[d] = np.array([c.district == d for c in chunks], dtype=np.float32)
        return idx

    @property
    def districts(self) -> list[str]:
        """Districts present in the index, from document metadata (never from code)."""
        return sorted({c.district for c in self.chunks if c.district})

    @property
    def documents(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("documents", {}).values())

    def chunk(self, chunk_id: str) -> Chunk | None:
        i = self.row_of.get(chunk_id)
        return self.chunks[i] if i is not None else None

    def is_current(self) -> bool:
        return current_generation(self.root) == self.gen


def embedding_cache(settings: Settings, embedder: Embedder) -> CachedEmbedder:
    return CachedEmbedder(embedder, Path(settings.index_dir) / "embcache.sqlite")
