"""The on-disk index: immutable generations swapped atomically.

    index_dir/
      current -> gen-<stamp>      symlink, replaced atomically by os.replace
      gen-<stamp>/manifest.json   documents, embedder, tokenizer
      gen-<stamp>/chunks.jsonl    every chunk (the table both retrievers index)
      gen-<stamp>/bm25/           bm25s files, rows in chunks.jsonl order
      gen-<stamp>/chroma/         Chroma persistent store (embedded mode)
      gen-<stamp>/pending.txt     ids of chunks whose vectors are not in chroma/ yet (absent: none)
      embcache.sqlite             document vectors by content hash, shared by generations
      embed-progress.json         the vector fill's progress (who, since when, done/total)

A generation is published as soon as its chunks are BM25-indexed: chunks without a vector are
listed in pending.txt and found by BM25 alone, and the vector fill (rag.ingest.fill) publishes
successor generations as their vectors arrive. Every generation is complete and consistent:
chunks.jsonl and bm25/ hold every chunk, chroma/ exactly the chunks not pending.

A reader resolves `current` once and keeps using that generation; an ingest builds the next
generation aside and swaps the link, so a failure or a kill never harms the readable index.

Server mode (settings.chroma_url): each generation's vectors are a server collection named in
its manifest (`zhengce-<gen>`); chunks.jsonl and bm25/ stay in the generation dir, so every app
process that shares the index dir and the server sees the same generation. Collections of
removed generations are dropped with them.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from rag.core.errors import IndexMissingError, StoreError
from rag.core.settings import Settings
from rag.core.types import Chunk
from rag.index.bm25 import BM25Store
from rag.index.cache import CachedEmbedder
from rag.index.embed import Embedder
from rag.index.tokenize import get_tokenizer
from rag.index.vectors import COLLECTION, SUBSET_MAX_VECTORS, ChromaStore

MANIFEST = "manifest.json"
CURRENT = "current"
PENDING = "pending.txt"
PROGRESS = "embed-progress.json"
log = logging.getLogger(__name__)


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
    except Exception as e:
        where = settings.chroma_url or str(path)
        raise StoreError(f"无法连接向量库 {where} (cannot open Chroma at {where}: {e})") from e


def close_client(client: Any) -> None:
    """Release a client's Chroma system: an embedded one holds its HNSW index in memory until
    closed, and a long-running app ingests (and so opens) a new generation per upload."""
    try:
        client.close()
    except Exception:  # noqa: BLE001 - releasing is best effort
        pass


def read_lease(gen: Path) -> IO[bytes] | None:
    """A shared lock on the generation's manifest while a process reads it: cleanup skips a
    generation someone still holds (a slow request can outlive several swaps)."""
    try:
        f = open(gen / MANIFEST, "rb")  # held until Index.close()
    except OSError:
        return None
    fcntl.flock(f, fcntl.LOCK_SH)
    return f


def _in_use(gen: Path) -> bool:
    try:
        with open(gen / MANIFEST, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # no manifest: half-built, nobody reads it
    return False


def collection_name(settings: Settings, gen: Path) -> str:
    return f"zhengce-{gen.name}" if settings.chroma_url else COLLECTION


def drop_vector_sets(settings: Settings, names: list[str]) -> None:
    """Delete server collections, best effort (no-op in embedded mode, where they live in the
    gen dir): cleanup must neither fail an ingest that succeeded nor mask why one failed."""
    if not settings.chroma_url or not names:
        return
    try:
        client = chroma_client(settings, None)
    except StoreError as e:
        log.warning("could not delete Chroma collections %s: %s", names, e)
        return
    try:
        existing = {c if isinstance(c, str) else c.name for c in client.list_collections()}
        for name in names:
            if name in existing:
                client.delete_collection(name)
    except Exception as e:  # noqa: BLE001 - see docstring
        log.warning("could not delete Chroma collections %s: %s", names, e)
    finally:
        close_client(client)


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


def half_built_generations(root: Path) -> list[Path]:
    """Generation folders without a manifest: being built, or abandoned by a killed ingest
    (which of the two only the ingest lock tells)."""
    return sorted(p for p in root.glob("gen-*") if p.is_dir() and not (p / MANIFEST).is_file())


def cleanup_generations(root: Path, keep: int = 2, settings: Settings | None = None) -> None:
    """Remove old and half-built generations, keeping the current one and its predecessor
    (an app process may still be reading it). With `settings` in server mode, their server
    collections go too. Call it holding the ingest lock: a half-built generation is only
    garbage when no ingest is building it."""
    cur = current_generation(root)
    gens = sorted(p for p in root.glob("gen-*") if p.is_dir())
    done = [g for g in gens if (g / MANIFEST).is_file()]
    keepers = {cur} | set(done[-keep:])
    doomed = [g for g in gens if g not in keepers and not _in_use(g)]
    if settings is not None and settings.chroma_url:
        drop_vector_sets(settings, [_vector_set_of(g, settings) for g in doomed])
    for g in doomed:
        shutil.rmtree(g, ignore_errors=True)


def _vector_set_of(gen: Path, settings: Settings) -> str:
    try:
        return str(json.loads((gen / MANIFEST).read_text("utf-8"))["collection"])
    except (OSError, ValueError, KeyError):
        return collection_name(settings, gen)  # half-built: the name it was being built under


def read_pending(gen: Path) -> list[str]:
    """Ids of the generation's chunks that have no vector yet, in chunks.jsonl order."""
    try:
        text = (gen / PENDING).read_text("utf-8")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if line]


def write_pending(gen: Path, ids: list[str]) -> None:
    if ids:
        (gen / PENDING).write_text("".join(i + "\n" for i in ids), "utf-8")


def read_progress(root: Path) -> dict[str, Any] | None:
    """The vector fill's last progress record, with `running` true only if its process lives."""
    try:
        info: dict[str, Any] = json.loads((root / PROGRESS).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    alive = False
    if info.get("state") == "running":
        try:
            os.kill(int(info.get("pid", 0)), 0)
            alive = True
        except (OSError, ValueError):
            alive = False
    info["running"] = alive
    return info


def write_progress(root: Path, info: dict[str, Any]) -> None:
    """Atomically replace the progress record (readers never see half a file)."""
    tmp = root / f".{PROGRESS}-{os.getpid()}-{time.monotonic_ns()}"
    tmp.write_text(json.dumps(info, ensure_ascii=False), "utf-8")
    os.replace(tmp, root / PROGRESS)


def vector_status(root: Path, gen: Path | None = None, chunks: int | None = None) -> dict[str, Any]:
    """How far the current generation's vectors are: chunks, how many still wait (found by BM25
    alone until theirs are published), and the fill's progress, for info, /healthz and the UI."""
    gen = gen or current_generation(root)
    pending = len(read_pending(gen)) if gen is not None else 0
    if chunks is None:
        chunks = 0
        if gen is not None:
            with open(gen / "chunks.jsonl", "rb") as f:
                chunks = sum(1 for line in f if line.strip())
    out: dict[str, Any] = {"chunks": chunks, "embedded": chunks - pending, "pending": pending}
    prog = read_progress(root)
    if prog is not None:
        out["fill"] = {
            k: prog.get(k) for k in ("running", "state", "done", "total", "started", "updated", "chunks_per_s")
        }
    return out


KIND_SCOPE = "kind:"
UNPLACED = ""  # the scope of chunks whose document has no place: searched beside any place


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
    kind_scopes: list[str] = field(default_factory=list)  # "kind:plan"…, usable as a district scope
    client: Any = None
    pending: frozenset[str] = frozenset()  # chunk ids without a vector: found by BM25 alone
    lease: IO[bytes] | None = None  # shared lock on the manifest: cleanup leaves this generation alone
    _districts: list[str] | None = None

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
        if bm25.num_docs != len(chunks):
            raise StoreError(f"索引已损坏 (index at {gen}: BM25 has {bm25.num_docs} rows, chunks.jsonl {len(chunks)})")
        collection = manifest.get("collection", COLLECTION)
        built_for = manifest.get("chroma_url")
        if built_for and not settings.chroma_url:
            raise StoreError(
                f"该索引的向量存放在 Chroma 服务器 {built_for}，请设置 RAG_CHROMA_URL "
                f"(this index keeps its vectors on the Chroma server {built_for}: set RAG_CHROMA_URL)"
            )
        if not settings.chroma_url and not (gen / "chroma").is_dir():
            raise StoreError(
                f"索引已损坏 (index at {gen} has no chroma/ folder: re-run `rag ingest` into a new --index)"
            )
        client = chroma_client(settings, gen / "chroma")
        try:
            vectors = ChromaStore(client, embedder, collection, create=False)
            n = vectors.count()
        except Exception as e:
            close_client(client)
            if isinstance(e, StoreError):
                raise
            raise StoreError(f"无法读取向量库 (cannot read Chroma collection {collection!r}: {e})") from e
        pending = frozenset(read_pending(gen))
        if n != len(chunks) - len(pending):
            close_client(client)
            want = len(chunks) - len(pending)
            raise StoreError(
                f"向量库集合 {collection} 与索引不一致（{n} 条向量，应为 {want} 条），请重新运行 rag ingest "
                f"(Chroma collection {collection!r} holds {n} vectors but generation {gen.name} has "
                f"{want} embedded chunks: it was changed outside `rag ingest`; re-run `rag ingest`)"
            )
        idx = Index(
            root=gen.parent, gen=gen, manifest=manifest, chunks=chunks, bm25=bm25, vectors=vectors, embedder=embedder
        )
        idx.client = client
        idx.lease = read_lease(gen)
        idx.pending = pending
        idx.row_of = {c.id: i for i, c in enumerate(chunks)}
        scope_ids: dict[str, list[str]] = {}
        for c in chunks:
            if c.id not in pending:  # the vectors a district's dense search can find
                scope_ids.setdefault(c.district or UNPLACED, []).append(c.id)
        vectors.scope_ids = scope_ids
        by_row = np.array([c.district or UNPLACED for c in chunks], dtype=object)
        for d in idx.districts + ([UNPLACED] if (by_row == UNPLACED).any() else []):
            idx.district_masks[d] = (by_row == d).astype(np.float32)
        idx._add_kind_scopes(scope_ids)
        return idx

    def _add_kind_scopes(self, scope_ids: dict[str, list[str]]) -> None:
        """Scopes "kind:plan", "kind:regulation"… searched like districts, when the index holds
        several kinds. Only small ones: a scope's vectors are searched exactly from memory."""
        kind_of = {d["doc_id"]: d.get("kind") or "other" for d in self.documents}
        if len(set(kind_of.values())) < 2:
            return
        by_row = np.array([kind_of.get(c.doc_id, "other") for c in self.chunks], dtype=object)
        for kind in sorted(set(kind_of.values())):
            mask = by_row == kind
            if 0 < mask.sum() <= SUBSET_MAX_VECTORS:
                key = KIND_SCOPE + kind
                scope_ids[key] = [
                    c.id for c, m in zip(self.chunks, mask, strict=True) if m and c.id not in self.pending
                ]
                self.district_masks[key] = mask.astype(np.float32)
                self.kind_scopes.append(key)

    def close(self) -> None:
        """Release the Chroma client (the index must not be searched afterwards)."""
        if self.client is not None:
            close_client(self.client)
            self.client = None
        if self.lease is not None:
            self.lease.close()  # releases the shared lock
            self.lease = None

    @property
    def districts(self) -> list[str]:
        """Districts present in the index, from document metadata (never from code). Computed
        once: the pipeline asks on every question, and a scan is ~5 ms at 100k chunks."""
        if self._districts is None:
            self._districts = sorted({c.district for c in self.chunks if c.district})
        return list(self._districts)

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
