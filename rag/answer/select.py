"""Which sentence answers: a learned reordering of the lexical scorer's best candidates.

`score_sentences` (rag/answer/score.py) ranks every sentence by hand-weighted coverage. Its top
`TOP` candidates are then re-ranked by a LambdaRank model (LightGBM, weights in
select_model.json, trained by `make train` = eval/train_select.py on CMRC 2018 trial, DRCD test
and our tuning sets) over signals the hand score blends or cannot see: its own score and rank,
retrieval ranks and the dense similarity of the passage, character overlap with the question,
how much the sentence adds beyond the question's words, its place in the passage, its
neighbours' coverage and the answer type it holds (a span pattern's match among them). The span
model's confidence was a feature too (3.6 % of the gain) but cost ~7 ms a regulation sentence,
55 ms a question, past the latency budget. A second booster judges whether anything found
answers; the pipeline asks it only under RAG_REFUSAL=learned or rescue (see the README).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.answer.boosters import booster, read_model
from rag.answer.score import HAS_DATE, HAS_LIST, HAS_NUM, HAS_ORG, Scored, defines
from rag.answer.span import rule_span
from rag.core.text import CJK, normalise
from rag.core.types import Hit
from rag.index.bm25 import rarest
from rag.query.question import INTENTS, Question

TOP = 8  # candidates the model re-ranks
MODEL_PATH = Path(__file__).with_name("select_model.json")
_KINDS = ("date", "number", "definition", "list", "who", "fact")
_INTENTS = tuple(dict.fromkeys([*(i.name for i in INTENTS), "fact"]))
# The question's scaffolding: its characters say what is asked, not where the answer is.
_SCAFFOLD = set(
    "的了是在和与及等为被由对将把从于以而并也都就又其之所这那着过或向让什么哪些个谁多少几何时怎样如吗呢？?，,。"
)
_QUOTE = re.compile(r"[《“「\"]")
FEATURES: tuple[str, ...] = (
    "score",
    "rank",
    "ratio",
    "gap",
    "coverage",
    "hit_rank",
    "hit_score",
    "bm25_rank",
    "dense_rank",
    "dense_sim",
    "position",
    "position_rel",
    "sentences",
    "length",
    "char_recall",
    "bigram_recall",
    "lcs_ratio",
    "density",
    "novel",
    "frame_before",
    "frame_after",
    "rule_span",
    "has_date",
    "has_num",
    "has_list",
    "has_org",
    "has_quote",
    "defines",
    "same_chunk_as_top",
    "prev_coverage",
    "next_coverage",
    "in_chunk",
    "question_length",
    *(f"kind={k}" for k in _KINDS),
    *(f"intent={i}" for i in _INTENTS),
)


def _lcs(a: str, b: str) -> int:
    """Longest common substring of two short strings (the question is ~20 characters)."""
    best = 0
    for i in range(len(a)):
        for j in range(i + best + 1, len(a) + 1):
            if a[i:j] in b:
                best = j - i
            else:
                break
    return best


@dataclass(frozen=True)
class _QuestionChars:
    content: frozenset[str]  # the question's characters without its scaffolding
    bigrams: frozenset[str]
    text: str


def _question_chars(q: Question) -> _QuestionChars:
    nq = q.normalised
    for name in q.drop:  # place names are scope, not topic
        nq = nq.replace(name, "")
    chars = frozenset(c for c in nq if CJK.match(c) and c not in _SCAFFOLD)
    bigrams = frozenset(nq[i : i + 2] for i in range(len(nq) - 1) if all(c in chars for c in nq[i : i + 2]))
    return _QuestionChars(chars, bigrams, nq)


def features(q: Question, scored: list[Scored], hits: list[Hit]) -> np.ndarray:
    """One row of FEATURES per candidate in `scored[:TOP]` (the hand scorer's order)."""
    head = scored[:TOP]
    if not head:
        return np.zeros((0, len(FEATURES)), dtype=np.float32)
    qc = _question_chars(q)
    best = head[0].score
    hit_rank = {h.chunk.id: r for r, h in enumerate(hits)}
    cov_at = {(s.hit.chunk.id, s.position): s.coverage for s in scored}
    sentences_in: dict[str, int] = {}
    for s in scored:
        sentences_in[s.hit.chunk.id] = max(sentences_in.get(s.hit.chunk.id, 0), s.position + 1)
    in_top: dict[str, int] = {}
    for s in head:
        in_top[s.hit.chunk.id] = in_top.get(s.hit.chunk.id, 0) + 1
    kind = [float(q.kind == k) for k in _KINDS]
    intent = [float(q.intent == i) for i in _INTENTS]
    rows = []
    for r, s in enumerate(head):
        ns = normalise(s.sentence)
        cjk = [c for c in ns if CJK.match(c)]
        in_q = sum(1 for c in cjk if c in qc.content)
        ranks = s.hit.ranks
        n_sent = sentences_in.get(s.hit.chunk.id, 1)
        before, after = q.frame
        rows.append(
            [
                s.score,
                r,
                s.score / best if best > 0 else 0.0,
                best - s.score,
                s.coverage,
                hit_rank.get(s.hit.chunk.id, len(hits)),
                s.hit.score,
                ranks.get("bm25", math.nan),
                ranks.get("dense", math.nan),
                ranks.get("dense_sim", math.nan),
                s.position,
                s.position / n_sent,
                n_sent,
                len(ns),
                sum(1 for c in qc.content if c in ns) / len(qc.content) if qc.content else 0.0,
                sum(1 for b in qc.bigrams if b in ns) / len(qc.bigrams) if qc.bigrams else 0.0,
                _lcs(qc.text, ns) / len(qc.text) if qc.text else 0.0,
                in_q / len(cjk) if cjk else 0.0,
                len(cjk) - in_q,
                float(before is not None and before in ns),
                float(after is not None and after in ns),
                float(rule_span(q, s.sentence) is not None),
                float(bool(HAS_DATE.search(ns))),
                float(bool(HAS_NUM.search(ns))),
                float(bool(HAS_LIST.search(ns))),
                float(bool(HAS_ORG.search(ns))),
                float(bool(_QUOTE.search(ns))),
                float(q.defined is not None and defines(ns, q.defined)),  # "所称X，是指…" for "X是什么意思"
                float(s.hit.chunk.id == head[0].hit.chunk.id),
                cov_at.get((s.hit.chunk.id, s.position - 1), math.nan),
                cov_at.get((s.hit.chunk.id, s.position + 1), math.nan),
                in_top[s.hit.chunk.id],
                len(qc.text),
                *kind,
                *intent,
            ]
        )
    return np.asarray(rows, dtype=np.float32)


class Ranks(Protocol):
    """Scores candidate rows of FEATURES: higher answers better."""

    def scores(self, x: np.ndarray) -> np.ndarray: ...


# How well the retrieved passages as a whole meet the question, whichever sentence is chosen: a
# colloquial question scores low on every sentence of the right passage, a topic the scoped
# documents never regulate leaves its own nouns unmatched in all of them.
CONTEXT_FEATURES: tuple[str, ...] = (
    "bm25_top",
    "bm25_top_per_char",
    "bm25_second_ratio",
    "dense_top",
    "hit_coverage",
    "title_recall",
    "missing_words",
    "missing_share",
    "missing_idf_max",
    "docs_in_top",
)
# What decides whether to answer at all: the chosen candidate's row, how sure the order is, the
# hand scorer's best (the refusal rule's own input) and the passages' CONTEXT_FEATURES.
ANSWER_FEATURES: tuple[str, ...] = (*FEATURES, "select_top", "select_gap", "hand_best", *CONTEXT_FEATURES)


def context(q: Question, hits: list[Hit], idf: dict[str, float]) -> np.ndarray:
    """CONTEXT_FEATURES of the hits the answer is chosen from."""
    if not hits:
        return np.full(len(CONTEXT_FEATURES), math.nan, dtype=np.float32)
    top = hits[0]
    raw = [h.ranks.get("bm25_score", math.nan) for h in hits[:2]]
    sims = [h.ranks["dense_sim"] for h in hits if "dense_sim" in h.ranks]
    first = normalise(top.chunk.title + top.chunk.embed_text)
    everywhere = "".join(normalise(h.chunk.title + h.chunk.embed_text) for h in hits)
    unseen = rarest(idf)

    def found(t: str, text: str) -> bool:
        return t in text or any(a in text for a in q.alts.get(t, ()))

    weights = {t: idf.get(t, unseen) for t in q.terms}
    total = sum(weights.values())
    covered = sum(w for t, w in weights.items() if found(t, first))
    # The question's own words (two characters or more), found as written or as a synonym of one of
    # their bigrams; how rare the rarest missing one is says whether it names a topic or is everyday.
    words = [w for w in q.words if len(w) >= 2]
    missing = [w for w in words if not found(w, everywhere) and not any(found(t, everywhere) for t in _bigrams(w))]
    qc = _question_chars(q)
    title = normalise(top.chunk.title)
    bm25_top = raw[0]
    return np.asarray(
        [
            bm25_top,
            bm25_top / max(len(qc.text), 1),
            raw[1] / bm25_top if len(raw) > 1 and bm25_top > 0 else math.nan,
            max(sims) if sims else math.nan,
            covered / total if total else 0.0,
            sum(1 for c in qc.content if c in title) / len(qc.content) if qc.content else 0.0,
            len(missing),
            len(missing) / len(words) if words else 0.0,
            max((idf.get(b, unseen) for w in missing for b in _bigrams(w)), default=0.0),
            len({h.chunk.doc_id for h in hits}),
        ],
        dtype=np.float32,
    )


def _bigrams(word: str) -> list[str]:
    return [word[i : i + 2] for i in range(len(word) - 1)]


@dataclass(frozen=True)
class Ranked:
    scored: list[Scored]  # the model's order for the head, the hand order after it
    x: np.ndarray  # FEATURES of the head, in that order
    s: np.ndarray  # the model's scores of the head, in that order
    hand_best: float  # the hand scorer's best score

    def answer_row(self, ctx: np.ndarray) -> np.ndarray:
        """ANSWER_FEATURES of the first candidate, with `ctx` the CONTEXT_FEATURES of the hits."""
        return answer_row(self.x, self.s, self.hand_best, ctx, first=0)  # the order's first: the answer


def answer_row(x: np.ndarray, s: np.ndarray, hand_best: float, ctx: np.ndarray, first: int | None = None) -> np.ndarray:
    """ANSWER_FEATURES of candidate `first` (default: the best-scored) of rows `x` with model scores `s`."""
    k = int(np.argmax(s)) if first is None else first
    rest = np.delete(s, k)
    gap = float(s[k] - rest.max()) if len(rest) else 0.0
    return np.concatenate([x[k], [s[k], gap, hand_best], ctx]).astype(np.float32)[None, :]


class SelectModel:
    """Two LightGBM boosters kept in LightGBM's text format inside select_model.json (loading
    runs no pickled code): a LambdaRank over FEATURES that orders the candidates, and a binary
    classifier over ANSWER_FEATURES that says whether the first one answers (else: refuse)."""

    def __init__(self, booster: Any, answer: Any | None = None, threshold: float = 0.5) -> None:
        self.booster = booster
        self.answer = answer
        self.threshold = threshold  # below this probability of answering, the pipeline refuses

    def scores(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(x, num_threads=1))

    def p_answer(self, ranked: Ranked, ctx: np.ndarray) -> float | None:
        """The classifier's probability that something found answers, or None without one;
        `ctx`: `context` of the hits `ranked` was chosen from."""
        if self.answer is None or not len(ranked.s):
            return None
        return float(self.answer.predict(ranked.answer_row(ctx), num_threads=1)[0])

    def answers(self, ranked: Ranked, ctx: np.ndarray) -> bool | None:
        """Whether the first candidate answers, or None without a classifier."""
        p = self.p_answer(ranked, ctx)
        return None if p is None else p >= self.threshold

    @staticmethod
    def load(path: Path = MODEL_PATH) -> SelectModel:
        d = read_model(path, {"features": FEATURES, "answer_features": ANSWER_FEATURES})
        answer = booster(d["answer_booster"]) if d.get("answer_booster") else None
        return SelectModel(booster(d["booster"]), answer, float(d.get("answer_threshold", 0.5)))


@functools.lru_cache(maxsize=1)
def shipped_selector() -> SelectModel | None:
    """The model in the package, or None when it is missing or stale (hand order only)."""
    try:
        return SelectModel.load()
    except (OSError, ValueError, KeyError):
        return None


_DEFINES = FEATURES.index("defines")


def rank(q: Question, scored: list[Scored], hits: list[Hit], model: Ranks | None) -> Ranked:
    """`scored` with its first TOP candidates in the model's order; scores stay the hand ones."""
    hand_best = max((c.score for c in scored), default=0.0)
    if model is None or not scored:
        return Ranked(scored, np.zeros((0, len(FEATURES)), dtype=np.float32), np.zeros(0), hand_best)
    x = features(q, scored, hits)
    s = model.scores(x)
    # The document's own "所称X，是指…" answers "X是什么意思" wherever the order would put it: the
    # few definition questions in training leave the order unsure of it beside repetitive articles.
    first = x[:, _DEFINES] > 0 if q.defined is not None else np.zeros(len(s), dtype=bool)
    order = np.lexsort((-s, ~first))
    return Ranked([scored[int(i)] for i in order] + scored[TOP:], x[order], s[order], hand_best)


def reorder(q: Question, scored: list[Scored], hits: list[Hit], model: Ranks | None) -> list[Scored]:
    return rank(q, scored, hits, model).scored
