"""Open-retrieval benchmark on CMRC 2018 (dev): index every passage, ask every question, and
report recall@1/@5 of a passage containing a gold answer for BM25 alone, dense alone and the
hybrid, plus how often the extractive answer contains a gold answer. All in one run.

    .venv/bin/python eval/cmrc.py [--limit N] [--index DIR] [--data FILE]

`--data ../shared/bench/drcd_dev.json` asks DRCD dev the same way (SQuAD format, converted from
Traditional to Simplified Chinese with OpenCC, a dev dependency); its report goes to drcd_report.md.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rag.answer.cite import answer_dict
from rag.answer.pipeline import Pipeline
from rag.cli import quiet_and_fast
from rag.core.settings import Settings
from rag.core.text import normalise
from rag.evaluate import em_f1, prediction
from rag.index.embed import make_embedder
from rag.ingest.build import ingest

DATA = Path(__file__).resolve().parents[2] / "shared" / "bench" / "cmrc2018_dev.json"
REPORT = Path(__file__).resolve().parent / "cmrc_report.md"


def from_squad(raw: dict) -> Iterator[dict]:
    """DRCD (SQuAD format, Traditional Chinese) as CMRC items in Simplified Chinese, one
    paragraph at a time (eval/train_span.py reads only the first few for a quick run)."""
    import opencc  # dev dependency: opencc-python-reimplemented

    t2s = opencc.OpenCC("t2s").convert
    for art in raw["data"]:
        for k, para in enumerate(art["paragraphs"]):
            qas = [
                {"query_text": t2s(q["question"]), "answers": [t2s(a["text"]) for a in q["answers"]]}
                for q in para["qas"]
            ]
            yield {"context_id": f"{art.get('id', 'DRCD')}_{k}", "context_text": t2s(para["context"]), "qas": qas}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--index", help="reuse/build the index here (default: a temp dir)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions")
    ap.add_argument("--no-embed", action="store_true", help="BM25 only (no vectors: minutes instead of an hour)")
    args = ap.parse_args()
    quiet_and_fast()
    raw = json.loads(Path(args.data).read_text("utf-8"))
    items = raw if isinstance(raw, list) else list(from_squad(raw))
    work = Path(args.index) if args.index else Path(tempfile.mkdtemp(prefix="cmrc-"))
    docs = work / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for it in items:
        name = re.sub(r"[^\w\u4e00-\u9fff-]", "_", it["context_id"])
        (docs / f"{name}.txt").write_text(it["context_text"], "utf-8")
    settings = Settings.from_env(index_dir=work / "index")  # RAG_SELECTOR=rules etc. for comparisons
    embedder = make_embedder(settings)
    t0 = time.perf_counter()
    rep = ingest([docs], settings, embedder, embed=not args.no_embed)
    print(f"indexed {len(items)} passages → {rep.chunks} chunks in {time.perf_counter() - t0:.0f}s")
    pipe = Pipeline(settings, embedder)
    idx = pipe.index
    qs = [
        (q["query_text"], [normalise(str(a)) for a in q["answers"] if str(a).strip()])
        for it in items
        for q in it["qas"]
    ]
    if args.limit:
        qs = qs[: args.limit]
    hits = {"bm25": [0, 0], "dense": [0, 0], "hybrid": [0, 0]}
    answered = 0
    lat: list[float] = []
    ems: list[float] = []
    f1s: list[float] = []
    lengths: list[int] = []
    quoted: list[int] = []  # the whole answer's length (what "gold inside" is measured on)

    def has_gold(texts: list[str], golds: list[str]) -> list[bool]:
        return [any(g in normalise(t) for g in golds) for t in texts]

    for q, golds in qs:
        ranked = {
            "bm25": [idx.chunks[i].text for i, _ in idx.bm25.search(q, 5)],
            "dense": []
            if args.no_embed
            else [idx.chunk(cid).text for cid, _ in idx.vectors.search(embedder.embed_query(q), 5)],  # type: ignore[union-attr]
            "hybrid": [h.chunk.text for h in pipe.retriever.retrieve(q, 5)],
        }
        for name, texts in ranked.items():
            g = has_gold(texts, golds)
            hits[name][0] += bool(g[:1] and g[0])
            hits[name][1] += any(g)
        a = pipe.ask(q)
        lat.append(a.timings_ms["total"])
        answered += any(g in normalise(a.answer) for g in golds)
        d = answer_dict(a)
        em, f1 = em_f1(prediction(d), golds) if not a.abstained else (0.0, 0.0)
        ems.append(em)
        f1s.append(f1)
        if not a.abstained:
            lengths.append(len(prediction(d)))
            quoted.append(len(re.sub(r"\[\d+\]", "", a.answer)))
    n = len(qs)
    lat.sort()
    lines = [
        f"{Path(args.data).stem}: {len(items)} passages → {rep.chunks} chunks, {n} questions",
        "",
        "| retriever | recall@1 | recall@5 |",
        "|---|---|---|",
        *(f"| {name} | {r1 / n:.3f} | {r5 / n:.3f} |" for name, (r1, r5) in hits.items()),
        "",
        f"gold answer inside the extractive answer: {answered / n:.3f} (answers of {sum(quoted) / max(len(quoted), 1):.1f}"
        f" characters on average; {n - len(quoted)} of {n} refused)",
        f"EM {sum(ems) / n:.3f}, F1 {sum(f1s) / n:.3f} (CMRC 2018 definitions, on answer_span where present, else"
        f" the answer; mean answer length {sum(lengths) / max(len(lengths), 1):.1f} characters)",
        f"ask latency p50 {lat[n // 2]:.1f} ms, p95 {lat[int(n * 0.95)]:.1f} ms",
    ]
    print("\n".join(lines))
    if not args.limit:
        report = REPORT if isinstance(raw, list) else REPORT.with_name("drcd_report.md")
        if args.no_embed:
            report = report.with_name(report.stem.replace("_report", "_bm25_report") + ".md")
        report.write_text("# `make eval-cmrc`\n\n" + "\n".join(lines) + "\n", "utf-8")


if __name__ == "__main__":
    main()
