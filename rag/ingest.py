"""`rag ingest`: files → documents → chunks → vectors + BM25, idempotent and atomic.

Unchanged files are skipped by content hash, a changed file replaces its old chunks, and
`prune` drops documents whose file is gone. The next generation is built aside and swapped in
only when complete (see index.py), so a failure leaves the previous index fully usable.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .chunk import chunk_document
from .embed import Embedder
from .errors import InputError, RagError
from .index import CURRENT, MANIFEST, chroma_client, cleanup_generations, current_generation, embedding_cache, swap_current
from .load import find_files, load_document
from .settings import Settings
from .store import BM25Store, ChromaStore
from .tokenize import get_tokenizer
from .types import Chunk, Document

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
    seconds: float = 0.0
    generation: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


@contextmanager
def index_lock(root: Path) -> Iterator[None]:
    """One writer at a time; readers never take it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _doc_entry(doc: Document, path: Path, n_chunks: int) -> dict[str, Any]:
    return {
        **doc.meta(),
        "path": str(path.resolve()),
        "chunks": n_chunks,
        "ingested_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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
        if (prev and prev["doc_id"] == doc.id) or doc.id in seen:
            report.unchanged.append(path.name)
        elif doc.id in old_docs:
            report.unchanged.append(path.name)
            report.warnings.append(f"{path.name}: 与已收录的 {old_docs[doc.id]['source']} 内容相同，跳过 (same content as {old_docs[doc.id]['source']}; skipped)")
        else:
            if prev:
                to_remove.add(prev["doc_id"])
                report.replaced.append(path.name)
            else:
                report.added.append(path.name)
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
) -> IngestReport:
    """Ingest files and folders into settings.index_dir; see the module docstring."""
    t0 = time.perf_counter()
    report = IngestReport()
    root = Path(settings.index_dir)
    files, report.warnings = find_files([Path(p) for p in paths])
    loaded: list[tuple[Path, Document]] = []
    for f in files:
        try:
            loaded.append((f, load_document(f)))
        except InputError as e:
            report.failed.append((f.name, str(e)))
        except (OSError, ValueError) as e:
            report.failed.append((f.name, f"无法读取 (cannot read: {e})"))
    with index_lock(root):
        cur = current_generation(root)
        manifest, old_chunks = _read_generation(cur)
        old_docs: dict[str, Any] = manifest.get("documents", {})
        to_add, to_remove = _plan(loaded, old_docs, prune, report)
        for doc_id in remove_doc_ids:
            if doc_id in old_docs and doc_id not in to_remove:
                to_remove.add(doc_id)
                report.removed.append(old_docs[doc_id]["source"])
        if cur is not None and not to_add and not to_remove:
            report.chunks = len(old_chunks)
            report.generation = cur.name
            report.seconds = time.perf_counter() - t0
            return report
        gen = root / f"gen-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%f')}"
        try:
            report.generation = gen.name
            _build_generation(gen, cur, settings, embedder, manifest, old_chunks, to_add, to_remove, report, progress)
            swap_current(root, gen)
        except BaseException:
            shutil.rmtree(gen, ignore_errors=True)
            raise
        cleanup_generations(root)
    report.seconds = time.perf_counter() - t0
    return report


def _build_generation(
    gen: Path,
    cur: Path | None,
    settings: Settings,
    embedder: Embedder,
    manifest: dict[str, Any],
    old_chunks: list[Chunk],
    to_add: list[tuple[Path, Document]],
    to_remove: set[str],
    report: IngestReport,
    progress: ProgressFactory | None,
) -> None:
    gen.mkdir(parents=True)
    if cur is not None and (cur / "chroma").is_dir() and not settings.chroma_url:
        shutil.copytree(cur / "chroma", gen / "chroma")
    new_chunks: list[Chunk] = []
    docs: dict[str, Any] = {k: v for k, v in manifest.get("documents", {}).items() if k not in to_remove}
    for path, doc in to_add:
        chunks = chunk_document(doc, settings.chunk_max_chars)
        if not chunks:
            raise RagError(f"{path.name}: 没有可索引的正文 (no indexable text)")
        new_chunks.extend(chunks)
        docs[doc.id] = _doc_entry(doc, path, len(chunks))
    cached = embedding_cache(settings, embedder)
    try:
        collection = f"zhengce-{gen.name}" if settings.chroma_url else "zhengce-chunks"
        store = ChromaStore(chroma_client(settings, gen / "chroma"), cached, collection)
        kept = [c for c in old_chunks if c.doc_id not in to_remove]
        if settings.chroma_url:
            to_embed = kept + new_chunks  # a fresh server collection per generation; vectors come from the cache
        else:
            store.delete_docs(sorted(to_remove))
            to_embed = new_chunks
        tick = progress(len(to_embed), "embedding") if progress and to_embed else None
        store.add(to_embed, progress=tick)
    finally:
        cached.close()
    all_chunks = kept + new_chunks
    with open(gen / "chunks.jsonl", "w", encoding="utf-8") as f:
        for c in all_chunks:
            f.write(json.dumps(c.to_json(), ensure_ascii=False) + "\n")
    BM25Store.build([c.embed_text for c in all_chunks], get_tokenizer(settings.bm25_tokens)).save(gen / "bm25")
    new_manifest = {
        "version": 1,
        "embedder": embedder.name,
        "dim": embedder.dim,
        "bm25_tokens": settings.bm25_tokens,
        "chunk_max_chars": settings.chunk_max_chars,
        "collection": collection,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "documents": docs,
    }
    # The manifest is written last: a generation without one is incomplete by definition.
    (gen / (MANIFEST + ".tmp")).write_text(json.dumps(new_manifest, ensure_ascii=False, indent=1), "utf-8")
    (gen / (MANIFEST + ".tmp")).replace(gen / MANIFEST)
    report.chunks = len(all_chunks)
    report.new_chunks = len(new_chunks)


__all__ = ["ingest", "IngestReport", "CURRENT"]
