"""Extractive answers: pick the sentence(s) that settle the question from the retrieved
passages, or abstain. No LLM needed; the LLM mode reuses the same evidence and refusal rules.

A sentence's score blends how much of the question's (IDF-weighted) content it covers, how much
its passage with title and section path covers, the passage's retrieval score, and whether it
has what the question type asks for (a date for 何时, a figure for 多少, a list for 哪些).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .types import Hit

# Question scaffolding: words that say what kind of answer is wanted, not what it is about.
_STOP = (
    "请问 一下 什么 是什么 为什么 什么时候 啥时候 啥 哪些 哪个 哪项 哪一年 哪年 哪里 哪儿 多少 几个 几项 几年 多久 何时 如何 怎么 怎样 "
    "怎么样 是否 有没有 有无 吗 呢 吧 呀 啊 的 了 在 和 与 及 对 把 被 要 会 能 该 这 那 那边 这边 里 中 上 "
    "规划 提到 提出 关于 方面 有关 说 讲 规定 明确 根据 按照 情况 内容 问题 我们 你们 一 个 搞 完 做 到"
)
STOP_WORDS = frozenset(_STOP.split())
_CJK = re.compile(r"[\u3400-\u9fff]")
_SENT = re.compile(r"[^。！？；!?;]*(?:[。！？；!?;]+[”’」』）)]*|$)")

DATE_Q = re.compile(r"何时|什么时候|啥时候|哪一?年|时间|期限|时限|截止|多久|几年|年底|什么时间|节点|完成时|搞完|到期")
NUM_Q = re.compile(r"多少|几个|几项|几家|几次|比例|百分|数量|比率|率是|达到了?多|占比|多大|排名|第几|几成")
LIST_Q = re.compile(r"哪些|包括|有哪|包含|分别|几个方面|哪几")
DEF_Q = re.compile(r"是什么|指什么|什么是|含义|定义|意思|是指|何谓|解释")
WHO_Q = re.compile(r"谁|哪个部门|哪些部门|哪个单位|哪个机构|由谁|牵头|负责|发文|印发|机关")
HAS_DATE = re.compile(r"\d{4}\s*年|年底|年前|年内|月底|\d+月|每年|“十四五”期间|期间")
HAS_NUM = re.compile(r"\d|百分之|[一二三四五六七八九十百千万两]+(?:个|项|家|次|件|名|级|类|成)")
HAS_LIST = re.compile(r"、|；|：|包括|分别")
HAS_DEF = re.compile(r"是指|指的是|是.{0,12}的|即|称为|：")


@dataclass(frozen=True)
class AnswerParams:
    w_sent: float = 0.55  # sentence coverage of the question's content
    w_chunk: float = 0.25  # passage (+ title/section header) coverage
    w_retr: float = 0.20  # fused retrieval score, normalised to the best hit
    type_bonus: float = 0.08
    type_penalty: float = 0.25  # asks for a date/figure the sentence lacks
    extra_ratio: float = 0.85  # further sentences kept when this close to the best
    district_ratio: float = 0.85  # per-district answers kept when this close to the best
    max_sentences: int = 3


@dataclass(frozen=True)
class Scored:
    hit: Hit
    sentence: str
    position: int  # index of the sentence inside the chunk
    score: float
    coverage: float


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", re.sub(r"\s+", "", text)).lower()


def split_sentences(text: str) -> list[str]:
    """Sentences ending at 。！？； (with closing quotes); nothing is dropped."""
    return [s for s in _SENT.findall(text) if s.strip()]


def query_terms(question: str, drop: tuple[str, ...] = ()) -> list[str]:
    """Content bigrams of the question (and Latin/digit words), without scaffolding and names
    of districts (scope is handled by metadata, not by words)."""
    q = normalise(question)
    for d in drop:
        q = q.replace(d, " ")
    import jieba

    words = [w for w in jieba.lcut(q) if w.strip() and w not in STOP_WORDS]
    kept = " ".join(words)
    terms: list[str] = []
    for run in re.findall(r"[\u3400-\u9fff]+|[a-z0-9.%]+", kept):
        if _CJK.match(run):
            terms.extend(run[i : i + 2] for i in range(len(run) - 1)) if len(run) > 1 else terms.append(run)
        else:
            terms.append(run)
    return list(dict.fromkeys(terms))


def question_kind(question: str) -> str:
    q = normalise(question)
    for kind, rx in (("date", DATE_Q), ("number", NUM_Q), ("definition", DEF_Q), ("list", LIST_Q), ("who", WHO_Q)):
        if rx.search(q):
            return kind
    return "fact"


def _coverage(terms: list[str], text: str, idf: dict[str, float]) -> float:
    if not terms:
        return 0.0
    total = sum(idf.get(t, 1.0) for t in terms)
    got = sum(idf.get(t, 1.0) for t in terms if t in text)
    return got / total if total else 0.0


def score_sentences(
    question: str, hits: list[Hit], idf: dict[str, float], drop: tuple[str, ...], p: AnswerParams
) -> list[Scored]:
    """Every sentence of every hit, scored, best first."""
    terms = query_terms(question, drop)
    kind = question_kind(question)
    out: list[Scored] = []
    for hit in hits:
        chunk_cov = _coverage(terms, normalise(hit.chunk.embed_text), idf)
        for pos, sent in enumerate(split_sentences(hit.chunk.text)):
            ns = normalise(sent)
            cov = _coverage(terms, ns, idf)
            score = p.w_sent * cov + p.w_chunk * chunk_cov + p.w_retr * hit.score
            if kind == "date":
                score += p.type_bonus if HAS_DATE.search(ns) else -p.type_penalty
            elif kind == "number":
                score += p.type_bonus if HAS_NUM.search(ns) else -p.type_penalty
            elif kind == "list" and HAS_LIST.search(ns):
                score += p.type_bonus
            elif kind == "definition" and HAS_DEF.search(ns):
                score += p.type_bonus
            out.append(Scored(hit, sent.strip(), pos, score, cov))
    out.sort(key=lambda s: -s.score)
    return out


def select_evidence(scored: list[Scored], p: AnswerParams) -> list[Scored]:
    """The best sentence plus close runners-up from the same passage, in reading order."""
    if not scored:
        return []
    best = scored[0]
    same = [
        s
        for s in scored[1:]
        if s.hit.chunk.id == best.hit.chunk.id and s.score >= p.extra_ratio * best.score and s.coverage > 0
    ]
    picked = [best, *same[: p.max_sentences - 1]]
    return sorted(picked, key=lambda s: s.position)
