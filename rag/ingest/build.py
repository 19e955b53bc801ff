"""`rag ingest`: files → documents → chunks → BM25 (+ vectors), idempotent and atomic.

Unchanged files are skipped by content hash, a changed file replaces its old chunks, and
`prune` drops documents whose file is gone. The next generation is built aside and swapped in
only when complete (see generations.py), so a failure leaves the previous index fully usable.

BM25 first: a generation is published as soon as its chunks are parsed and BM25-indexed. It
carries the vectors it already has (from the previous generation or the embedding cache) and
lists the other chunks in pending.txt; `rag.ingest.fill` embeds those into the cache and
publishes successor generations with them (`publish_vectors`). `ingest(embed=True)`, the CLI's
default, runs that fill before it returns; `--no-embed` and the app leave it to the background.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import InputError, RagError, StoreError, UserError
from rag.core.settings import Settings
from rag.core.types import Chunk, Document
from rag.index.bm25 import BM25Store
from rag.index.embed import Embedder, describe_embedder
from rag.index.generations import (
    CURRENT,
    MANIFEST,
    PENDING,
    chroma_client,
    cleanup_generations,
    close_client,
    collection_name,
    current_generation,
    drop_vector_sets,
    embedding_cache,
    half_built_generations,
    read_pending,
    swap_current,
    write_pending,
)
from rag.index.tokenize import get_tokenizer
from rag.index.vectors import COLLECTION, ChromaStore
from rag.ingest.chunk import CHUNKER_VERSION, chunk_document
from rag.ingest.load import find_files, load_document
from rag.ingest.versions import apply_versions

REBUILD_SHARE = 0.2  # above this share of chunks removed, the vector store is rebuilt, not edited
log = logging.getLogger(__name__)
ProgressFactory = Callable[[int, str], Callable[[int], None]]


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    warnings: list[str] = field(default_factory=list)
    chunks: int = 0  # chunks in the index afterwards
    new_chunks: int = 0
    pending: int = 0  # chunks still without a vector afterwards (found by BM25 alone)
    embedded: int = 0  # chunks this run embedded (cache hits not counted)
    seconds: float = 0.0
    searchable_s: float | None = None  # when the new generation was published (BM25-searchable)
    generation: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


LOCK_INFO = ".lock.info"  # who holds the ingest lock: pid, start time, command


class IndexBusyError(UserError):
    """Another ingest holds the index lock and the caller would not wait."""


def lock_holder(root: Path) -> str:
    """The ingest holding root's lock, as "pid 123, since …: rag ingest …" (best effort)."""
    try:
        info = json.loads((root / LOCK_INFO).read_text("utf-8"))
        return f"pid {info['pid']}，始于 since {info['started']}：{info['command']}"
    except (OSError, ValueError, KeyError):
        return "未知 (unknown)"


@contextmanager
def index_lock(root: Path, wait: bool = True) -> Iterator[None]:
    """One writer at a time; readers never take it. If another ingest holds it, say which one
    and wait (a warning) or, with wait=False, raise IndexBusyError at once."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(root)
            if not wait:
                raise IndexBusyError(
                    f"另一个导入正在写入索引 {root}（{holder}），未等待 "
                    f"(another ingest is writing {root} ({holder}); not waiting: --no-wait)"
                ) from None
            log.warning("等待另一个导入完成 waiting for another ingest into %s to finish (%s)", root, holder)
            fcntl.flock(f, fcntl.LOCK_EX)
        info = {
            "pid": os.getpid(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:300],
        }
        (root / LOCK_INFO).write_text(json.dumps(info, ensure_ascii=False), "utf-8")
        try:
            yield
        finally:
            (root / LOCK_INFO).unlink(missing_ok=True)
            fcntl.flock(f, fcntl.LOCK_UN)


def remove_abandoned_builds(settings: Settings, wait: bool = False) -> list[str]:
    """Delete half-built generations left by a killed ingest (no manifest) and, in server mode,
    their collections. Only when no live ingest holds the lock: its build is not abandoned."""
    root = Path(settings.index_dir)
    if not root.is_dir():
        return []
    try:
        with index_lock(root, wait=wait):
            return _remove_half_built(root, settings)
    except IndexBusyError:
        return []


def _remove_half_built(root: Path, settings: Settings) -> list[str]:
    for stray in root.glob(".current-*"):  # a swap killed between its symlink and the rename
        stray.unlink(missing_ok=True)
    doomed = half_built_generations(root)
    if doomed:
        log.warning("removing abandoned half-built generations: %s", ", ".join(g.name for g in doomed))
        drop_vector_sets(settings, [collection_name(settings, g) for g in doomed])
        for g in doomed:
            shutil.rmtree(g, ignore_errors=True)
    return [g.name for g in doomed]


def _doc_entry(doc: Document, path: Path, n_chunks: int) -> dict[str, Any]:
    return {
        **doc.meta(),
        "path": str(path.resolve()),
        "chunks": n_chunks,
        "chunker": CHUNKER_VERSION,
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _read_generation(gen: Path | None) -> tuple[dict[str, Any], list[Chunk]]:
    if gen is None:
        return {"documents": {}}, []
    manifest = json.loads((gen / MANIFEST).read_text("utf-8"))
    with open(gen / "chunks.jsonl", encoding="utf-8") as f:
        chunks = [Chunk.from_json(json.loads(line)) for line in f if line.strip()]
    return manifest, chunks


def _plan(
    loaded: list[tuple[Path, Document]], old_docs: dict[str, Any], prune: bool, report: IngestReport
) -> tuple[list[tuple[Path, Document]], set[str]]:
    """Which documents to add and which old doc ids to drop."""
    by_path = {d["path"]: d for d in old_docs.values()}
    to_add: list[tuple[Path, Document]] = []
    to_remove: set[str] = set()
    seen: set[str] = set()
    for path, doc in loaded:
        p = str(path.resolve())
        prev = by_path.get(p)
        current = prev is not None and prev["doc_id"] == doc.id and prev.get("chunker") == CHUNKER_VERSION
        if current or doc.id in seen:
            report.unchanged.append(path.name)
        elif doc.id in old_docs and old_docs[doc.id].get("chunker") == CHUNKER_VERSION:
            report.unchanged.append(path.name)
            report.warnings.append(
                f"{path.name}: 与已收录的 {old_docs[doc.id]['source']} 内容相同，跳过 (same content as {old_docs[doc.id]['source']}; skipped)"
            )
        else:
            if prev:
                to_remove.add(prev["doc_id"])
                report.replaced.append(path.name)
            else:
                report.added.append(path.name)
            if doc.id in old_docs:  # same text, chunked by an older chunker: its chunks are redone
                to_remove.add(doc.id)
            to_add.append((path, doc))
        seen.add(doc.id)
    if prune:
        for d in old_docs.values():
            if not Path(d["path"]).exists() and d["doc_id"] not in to_remove:
                to_remove.add(d["doc_id"])
                report.removed.append(d["source"])
    return to_add, to_remove


def ingest(
    paths: Sequence[Path],
    settings: Settings,
    embedder: Embedder,
    prune: bool = False,
    remove_doc_ids: Sequence[str] = (),
    progress: ProgressFactory | None = None,
    wait: bool = True,
    embed: bool = True,
) -> IngestReport:
    """Ingest files and folders into settings.index_dir; see the module docstring. With `embed`,
    the vectors the new generation lacks are filled in (and published) before returning."""
    t0 = time.perf_counter()
    report = _ingest_bm25_first(paths, settings, embedder, prune, remove_doc_ids, wait, t0)
    if embed and report.pending:
        from rag.ingest.fill import fill_vectors

        try:
            filled = fill_vectors(settings, embedder, progress=progress)
        except BaseException as e:
            if _disk_full(e):  # the BM25-first generation is in: say so, not "nothing changed"
                raise StoreError(
                    f"磁盘空间不足：文件已入库，可按关键词检索，但 {report.pending} 段的向量未能写入；释放空间后运行 "
                    f"`rag embed` 补齐 (no space left on the device: the documents were indexed and are searchable "
                    f"by keywords (BM25), but the vectors of {report.pending} chunks could not be written; free "
                    "space and run `rag embed`)"
                ) from e
            raise
        report.embedded, report.pending = filled.embedded, filled.pending
        if filled.published:
            report.generation = filled.published[-1]
    report.seconds = time.perf_counter() - t0
    return report


def _ingest_bm25_first(
    paths: Sequence[Path],
    settings: Settings,
    embedder: Embedder,
    prune: bool,
    remove_doc_ids: Sequence[str],
    wait: bool,
    t0: float,
) -> IngestReport:
    report = IngestReport()
    root = Path(settings.index_dir)
    # A path that was named but is not there is a failure (exit status 1), not a skip.
    report.failed = [(str(p), f"{p}: 文件不存在 (not found)") for p in map(Path, paths) if not p.exists()]
    files, report.warnings = find_files([Path(p) for p in paths if Path(p).exists()])
    loaded: list[tuple[Path, Document]] = []
    for f in files:
        try:
            loaded.append((f, load_document(f)))
        except InputError as e:
            report.failed.append((f.name, str(e)))
        except (OSError, ValueError) as e:
            report.failed.append((f.name, f"无法读取 (cannot read: {e})"))
    with index_lock(root, wait=wait):
        # Holding the lock, a generation without a manifest belongs to a killed ingest.
        _remove_half_built(root, settings)
        cur = current_generation(root)
        manifest, old_chunks = _read_generation(cur)
        old_docs: dict[str, Any] = manifest.get("documents", {})
        to_add, to_remove = _plan(loaded, old_docs, prune, report)
        for doc_id in remove_doc_ids:
            if doc_id in old_docs and doc_id not in to_remove:
                to_remove.add(doc_id)
                report.removed.append(old_docs[doc_id]["source"])
        if cur is None and not to_add:
            report.seconds = time.perf_counter() - t0
            return report  # nothing to index yet: no empty generation
        if (
            cur is not None
            and not to_add
            and not to_remove
            and _vectors_intact(settings, manifest, len(old_chunks) - len(read_pending(cur)), report)
        ):
            report.chunks = len(old_chunks)
            report.pending = len(read_pending(cur))
            report.generation = cur.name
            report.seconds = time.perf_counter() - t0
            return report
        _publish(root, _Change(cur, manifest, old_chunks, to_add, to_remove), settings, embedder, report)
        report.searchable_s = time.perf_counter() - t0
    report.seconds = time.perf_counter() - t0
    return report


def publish_vectors(settings: Settings, embedder: Embedder, wait: bool = True) -> str | None:
    """Publish a successor of the current generation holding the vectors the embedding cache now
    has for its pending chunks; the new generation's name, or None when there was nothing to add."""
    root = Path(settings.index_dir)
    if not root.is_dir():
        return None
    with index_lock(root, wait=wait):
        cur = current_generation(root)
        if cur is None or not (pending := set(read_pending(cur))):
            return None
        manifest, old_chunks = _read_generation(cur)
        if manifest.get("embedder") and manifest["embedder"] != embedder.name:
            raise StoreError(
                f"索引由 {manifest['embedder']} 生成，与当前嵌入模型 {embedder.name} 不一致 "
                f"(index was built with {manifest['embedder']}, not {embedder.name})"
            )
        cached = embedding_cache(settings, embedder)
        try:
            hits = cached.lookup([cached.key(c.embed_text) for c in old_chunks if c.id in pending])
        finally:
            cached.close()
        if not hits:
            return None
        report = IngestReport()
        _publish(root, _Change(cur, manifest, old_chunks), settings, embedder, report)
        return report.generation


@dataclass(frozen=True)
class _Change:
    """What one publish does: the generation it starts from and the documents it adds and removes
    (none for a publish that only adds vectors)."""

    cur: Path | None
    manifest: dict[str, Any]
    old_chunks: list[Chunk]
    to_add: list[tuple[Path, Document]] = field(default_factory=list)
    to_remove: set[str] = field(default_factory=set)


def _publish(root: Path, change: _Change, settings: Settings, embedder: Embedder, report: IngestReport) -> None:
    """Build the next generation aside and swap it in (hold the ingest lock)."""
    gen = root / f"gen-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}"
    try:
        report.generation = gen.name
        _build_generation(gen, change, settings, embedder, report)
        swap_current(root, gen)
    except BaseException as e:
        # The current generation was never touched; drop the half-built one (and, in server
        # mode, its collection). A kill skips this: the next ingest's cleanup removes it.
        drop_vector_sets(settings, [collection_name(settings, gen)])
        shutil.rmtree(gen, ignore_errors=True)
        if _disk_full(e):
            raise StoreError(
                f"磁盘空间不足，索引未更新，原索引不变 ({root}: no space left on the device; the index was not "
                f"changed and the previous one is still served: free space and re-run the ingest)"
            ) from e
        raise
    cleanup_generations(root, settings=settings)


def _disk_full(e: BaseException) -> bool:
    """ENOSPC, directly or as the message of a wrapped error (SQLite/Chroma say it in words)."""
    while e is not None:
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return True
        text = str(e).lower()
        if "no space left" in text or "disk is full" in text or "disk full" in text:
            return True
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    return False


def _build_generation(gen: Path, change: _Change, settings: Settings, embedder: Embedder, report: IngestReport) -> None:
    cur, manifest, old_chunks, to_add, to_remove = (
        change.cur,
        change.manifest,
        change.old_chunks,
        change.to_add,
        change.to_remove,
    )
    gen.mkdir(parents=True)
    server = bool(settings.chroma_url)
    removed = sum(1 for c in old_chunks if c.doc_id in to_remove)
    # Deleting from a copied HNSW graph leaves holes: after re-chunking all 1,552 CMRC passages in
    # place, Chroma's top 5 matched the exact top 5 only 97.3 % of the time (dense recall@1 .874 → .857).
    # When much is removed, a fresh collection gets the kept vectors copied over instead.
    fresh = server or (cur is not None and removed > REBUILD_SHARE * len(old_chunks))
    if cur is not None and (cur / "chroma").is_dir() and not fresh:
        # Embedded mode: start from a copy of the current store (no re-indexing of kept vectors).
        shutil.copytree(cur / "chroma", gen / "chroma")
    new_chunks: list[Chunk] = []
    docs: dict[str, Any] = {k: v for k, v in manifest.get("documents", {}).items() if k not in to_remove}
    for path, doc in to_add:
        chunks = chunk_document(doc, settings.chunk_max_chars)
        if not chunks:
            raise RagError(f"{path.name}: 没有可索引的正文 (no indexable text)")
        new_chunks.extend(chunks)
        docs[doc.id] = _doc_entry(doc, path, len(chunks))
    # Versions of one document: the latest is current; superseded ones are marked or dropped.
    new_chunks = apply_versions(docs, to_add, new_chunks, to_remove, settings.keep_superseded, report.warnings)
    kept = [c for c in old_chunks if c.doc_id not in to_remove]
    all_chunks = kept + new_chunks
    if not all_chunks:
        raise InputError("索引不能为空：至少保留一份文件 (an index needs at least one document; nothing would be left)")
    collection = collection_name(settings, gen)
    cached = embedding_cache(settings, embedder)
    client = chroma_client(settings, gen / "chroma")
    old_pending = set(read_pending(cur)) if cur is not None else set()
    try:
        store = ChromaStore(client, cached, collection)
        if fresh:
            # A fresh collection (per generation on a server: readers of the current one are
            # untouched). Kept vectors are copied from the current one, never re-embedded.
            has = [c for c in kept if c.id not in old_pending]
            old = _old_vectors(settings, cur, client, cached, manifest, has) if cur is not None else {}
            carried = [c for c in has if c.id in old]
            if carried:
                store.add_vectors(carried, np.stack([old[c.id] for c in carried]))
            need = [c for c in kept if c.id not in old] + new_chunks
        else:
            store.delete_docs(sorted(to_remove))
            need = [c for c in kept if c.id in old_pending] + new_chunks
        # Vectors the cache already has cost nothing: added now. The others wait in pending.txt.
        keys = {c.id: cached.key(c.embed_text) for c in need}
        hits = cached.lookup(sorted(set(keys.values())))
        have = [c for c in need if keys[c.id] in hits]
        if have:
            store.add_vectors(have, np.stack([hits[keys[c.id]] for c in have]))
        waiting = {c.id for c in need if keys[c.id] not in hits}
        pending = [c.id for c in all_chunks if c.id in waiting]
        if store.count() != len(all_chunks) - len(pending):
            raise StoreError(
                f"向量库条数不符 (Chroma holds {store.count()} vectors, expected {len(all_chunks) - len(pending)})"
            )
    finally:
        cached.close()
        close_client(client)
    if cur is not None and not to_add and not to_remove:  # same chunks, more vectors: copy the rest
        shutil.copy2(cur / "chunks.jsonl", gen / "chunks.jsonl")
        shutil.copytree(cur / "bm25", gen / "bm25")
    else:
        with open(gen / "chunks.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(c.to_json(), ensure_ascii=False) + "\n" for c in all_chunks)
        BM25Store.build([c.embed_text for c in all_chunks], get_tokenizer(settings.bm25_tokens)).save(gen / "bm25")
    write_pending(gen, pending)
    new_manifest = {
        "version": 1,
        "embedder": embedder.name,
        "embedder_backend": describe_embedder(embedder),  # what ran it: backend, model (and server)
        "dim": embedder.dim,
        "bm25_tokens": settings.bm25_tokens,
        "chunk_max_chars": settings.chunk_max_chars,
        "collection": collection,
        "chroma_url": settings.chroma_url,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "documents": docs,
    }
    # The manifest is written last: a generation without one is incomplete by definition.
    (gen / (MANIFEST + ".tmp")).write_text(json.dumps(new_manifest, ensure_ascii=False, indent=1), "utf-8")
    (gen / (MANIFEST + ".tmp")).replace(gen / MANIFEST)
    report.chunks = len(all_chunks)
    report.new_chunks = len(new_chunks)
    report.pending = len(pending)


def _vectors_intact(settings: Settings, manifest: dict[str, Any], n: int, report: IngestReport) -> bool:
    """In server mode, whether the current generation's collection still holds its n vectors;
    if not (the server lost or changed it) the ingest rebuilds it instead of skipping."""
    if not settings.chroma_url:
        return True
    name = manifest.get("collection", COLLECTION)
    client = chroma_client(settings, None)
    try:
        count = int(client.get_collection(name).count())
    except Exception:  # noqa: BLE001 - missing collection (NotFoundError and friends)
        count = -1
    finally:
        close_client(client)
    if count == n:
        return True
    report.warnings.append(
        f"Chroma 集合 {name} 缺失或不完整，重建 (collection {name} is missing or changed; rebuilding it)"
    )
    return False


def _old_vectors(
    settings: Settings, cur: Path, client: Any, embedder: Embedder, manifest: dict[str, Any], kept: list[Chunk]
) -> dict[str, np.ndarray]:
    """Vectors of kept chunks from the current generation's collection ({} if it is gone: they
    are then re-embedded, from the embedding cache when it has them)."""
    own = None
    try:
        if not settings.chroma_url:
            if not (cur / "chroma").is_dir():
                return {}
            own = chroma_client(settings, cur / "chroma")
        old = ChromaStore(own or client, embedder, manifest.get("collection", COLLECTION), create=False)
        return old.vectors([c.id for c in kept])
    except Exception as e:  # noqa: BLE001 - a lost collection is recoverable by re-embedding
        log.info("cannot copy vectors from %s (%s); re-embedding", manifest.get("collection"), e)
        return {}
    finally:
        if own is not None:
            close_client(own)


__all__ = [
    "CURRENT",
    "PENDING",
    "IndexBusyError",
    "IngestReport",
    "ingest",
    "publish_vectors",
    "remove_abandoned_builds",
]
