"""The vector fill: embed the current generation's pending chunks behind a BM25-first ingest.

Vectors go to the embedding cache (committed per batch), so a killed fill loses at most one
batch and the next one resumes from the cache instead of starting over. Now and then, and at the
end, `publish_vectors` swaps in a successor generation holding them; between two publishes the
served generation stays complete and consistent (its pending chunks are found by BM25 alone).
Progress is written to index_dir/embed-progress.json for `rag info`, /healthz and the app.
One fill per index at a time (a second one returns at once).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.core.settings import Settings
from rag.core.types import Chunk
from rag.index.embed import Embedder
from rag.index.generations import current_generation, embedding_cache, read_pending, write_progress
from rag.ingest.build import ProgressFactory, publish_vectors

BATCH = 32  # texts per embedding call; each batch is committed to the cache
PUBLISH_EVERY_S = 60.0  # the least time between two intermediate publishes
PUBLISH_COST_SHARE = 3.0  # and at least this many times what the last publish took


@dataclass
class FillReport:
    embedded: int = 0  # texts embedded by this fill
    cached: int = 0  # pending chunks whose vector the cache already had
    pending: int = 0  # chunks of the current generation still without a vector afterwards
    published: list[str] = field(default_factory=list)
    seconds: float = 0.0
    busy: bool = False  # another fill held the index: this one did nothing
    stopped: bool = False


@contextmanager
def _fill_lock(root: Path) -> Iterator[bool]:
    """True if this process may fill `root`'s vectors, False while another fill does."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".fill.lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def pending_chunks(gen: Path) -> list[Chunk]:
    """The generation's chunks that have no vector yet, in chunks.jsonl order."""
    ids = set(read_pending(gen))
    if not ids:
        return []
    with open(gen / "chunks.jsonl", encoding="utf-8") as f:
        rows = (json.loads(line) for line in f if line.strip())
        return [Chunk.from_json(r) for r in rows if r.get("id") in ids]


def fill_vectors(
    settings: Settings,
    embedder: Embedder,
    progress: ProgressFactory | None = None,
    stop: threading.Event | None = None,
    on_publish: Callable[[str], None] | None = None,
    batch: int = BATCH,
    publish_every_s: float = PUBLISH_EVERY_S,
) -> FillReport:
    """Embed and publish every pending vector of settings.index_dir's current generation (and of
    generations an ingest swaps in meanwhile); returns when none is left or `stop` is set."""
    t0 = time.perf_counter()
    root = Path(settings.index_dir)
    report = FillReport()
    with _fill_lock(root) as mine:
        if not mine:
            report.busy = True
            return report
        cache = embedding_cache(settings, embedder)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        info: dict[str, Any] = {"pid": os.getpid(), "state": "running", "started": started, "done": 0, "total": 0}

        def publish() -> None:
            name = publish_vectors(settings, embedder)
            if name is not None:
                report.published.append(name)
                if on_publish is not None:
                    on_publish(name)

        try:
            while not (stop and stop.is_set()):
                gen = current_generation(root)
                chunks = pending_chunks(gen) if gen is not None else []
                if not chunks:
                    break
                keys = [cache.key(c.embed_text) for c in chunks]
                have = set(cache.lookup(sorted(set(keys))))
                todo: dict[str, str] = {}  # key → text, each distinct text once
                for c, k in zip(chunks, keys, strict=True):
                    if k not in have:
                        todo.setdefault(k, c.embed_text)
                report.cached += sum(1 for k in keys if k in have)
                info.update(generation=gen.name if gen else None, total=len(chunks), done=len(chunks) - len(todo))
                _write(root, info, t0, report)
                tick = progress(len(todo), "embedding") if progress and todo else None
                texts, todo_keys = list(todo.values()), list(todo)
                uses = Counter(keys)  # chunks sharing a text get its one vector
                last_pub, pub_cost = time.perf_counter(), 0.0
                for s in range(0, len(texts), batch):
                    if stop and stop.is_set():
                        break
                    part = texts[s : s + batch]
                    cache.embed_documents(part, batch=len(part))  # stored (committed) in the cache
                    report.embedded += len(part)
                    info["done"] += sum(uses[k] for k in todo_keys[s : s + batch])
                    _write(root, info, t0, report)
                    if tick:
                        tick(len(part))
                    now = time.perf_counter()
                    if s + batch < len(texts) and now - last_pub >= max(publish_every_s, PUBLISH_COST_SHARE * pub_cost):
                        publish()
                        last_pub = time.perf_counter()
                        pub_cost = last_pub - now
                before = len(report.published)
                publish()
                if not texts and len(report.published) == before:
                    break  # nothing to embed and nothing new to publish: do not spin
            report.stopped = bool(stop and stop.is_set())
            gen = current_generation(root)
            report.pending = len(read_pending(gen)) if gen is not None else 0
            info["state"] = "stopped" if report.stopped and report.pending else "done"
        except BaseException as e:
            info.update(state="failed", error=str(e)[:300])
            raise
        finally:
            cache.close()
            report.seconds = time.perf_counter() - t0
            _write(root, info, t0, report)
    return report


def _write(root: Path, info: dict[str, Any], t0: float, report: FillReport) -> None:
    elapsed = time.perf_counter() - t0
    info["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
    info["chunks_per_s"] = round(report.embedded / elapsed, 2) if elapsed > 0 else None
    try:
        write_progress(root, info)
    except OSError:  # progress is informative only
        pass
