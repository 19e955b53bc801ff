"""The question, analysed once at the door: every later stage reads this object and none
re-normalises or re-segments the text.

Intents live in one table, `INTENTS`, matched in order: the first row whose pattern occurs gives
the question's `intent` (the fine reading: when, how many, which ones, what is X, who, where, how,
why, yes or no, which thing) and its `kind` (the answer type sentence scoring checks: date, number,
definition, list, who, or fact for everything a sentence states in words).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from rag.core.text import CJK, normalise
from rag.query.terms import (
    DATE_Q,
    DEF_Q,
    FUTURE_Q,
    LIST_Q,
    NUM_Q,
    ORDINAL_Q,
    PAST_Q,
    RANK_Q,
    WHO_Q,
    defined_term,
    head_noun,
    query_terms,
    question_words,
    required_unit,
    synonym_alts,
    trigrams,
)
from rag.query.titles import named_titles


@dataclass(frozen=True)
class Intent:
    name: str  # the fine reading of the question
    pattern: re.Pattern[str]
    kind: str  # the answer type sentence scoring checks
    wants_span: bool  # a short span (date, figure, name, place, items) can answer it
    unless: re.Pattern[str] | None = None  # the row does not apply when this also occurs


# Order matters: "哪几个方面" is a list before it is a count; "多少" a figure before a "what".
INTENTS: tuple[Intent, ...] = (
    Intent("which_ones", re.compile(r"哪几(?![年天月日])|有哪些|包括哪"), "list", True, re.compile(r"多少|比例")),
    Intent("when", DATE_Q, "date", True),
    Intent("how_many", NUM_Q, "number", True),
    Intent("what_is", DEF_Q, "definition", True),
    Intent("which_ones", LIST_Q, "list", True),
    Intent("who", WHO_Q, "who", True),
    Intent(
        "where", re.compile(r"哪里|哪儿|何处|何地|什么地方|哪个(?:国家|城市|省|地区|地方)|哪座|位于|在哪"), "fact", True
    ),
    Intent("why", re.compile(r"(?<![称成作认视叫名])为什么|为何|什么原因|原因是|因为什么|目的是什么"), "fact", False),
    Intent("how", re.compile(r"如何|怎样|怎么(?!样)|什么方式|什么办法|什么途径|步骤|流程|程序"), "fact", False),
    Intent("yes_no", re.compile(r"是否|是不是|有没有|能否|可否|可不可以|能不能|会不会|吗[？?]?$"), "fact", False),
    Intent("which", re.compile(r"什么|哪|何种|啥"), "fact", True),
)
FACT = Intent("fact", re.compile(r"(?!)"), "fact", False)
# Function words: neither topic nor answer ("的", "是由"…). The span features read them too.
FUNCTION_WORDS = frozenset(
    "的 了 是 在 和 与 及 等 为 被 由 对 将 把 从 于 以 而 并 也 都 就 又 其 之 所 这 那 着 过 或 向 让".split()
)
PUNCT_WORD = re.compile(r"^[\W_]+$")  # a jieba word that is only punctuation
# The question's own pointer at its answer: the words beside it frame the answer in the passage.
_WH = re.compile(r"什么|哪[一个些里儿种位座年国家天]*|谁|多少|几[个项年月天次种]?|何[时地处种]?|怎么|怎样|如何|为什么")


def match_intent(normalised: str) -> Intent:
    """The first row of INTENTS that the (normalised) question matches."""
    for it in INTENTS:
        if it.pattern.search(normalised) and not (it.unless and it.unless.search(normalised)):
            return it
    return FACT


@dataclass(frozen=True)
class Question:
    """One question, analysed: built by `analyse`, read by retrieval, scoring and spans."""

    text: str  # as asked (stripped)
    normalised: str
    drop: tuple[str, ...]  # place names cut before term matching (scope comes from metadata)
    words: tuple[str, ...]  # jieba words without scaffolding and place names
    terms: tuple[str, ...]  # content bigrams (and Latin/digit words)
    trigrams: tuple[str, ...]
    alts: Mapping[str, frozenset[str]]  # term → the synonyms of the word it came from
    intent: str
    kind: str
    wants_span: bool
    unit: str | None  # the measure word a figure must carry ("多少名" → 名)
    defined: str | None  # the term a definition question asks about
    head: str | None  # the noun an answer names an instance of ("什么性质的部门" → 部门)
    past: bool  # looks back (十三五, 取得了…)
    future: bool  # looks ahead (要求, 目标…)
    rank: bool
    ordinal: bool
    marks: tuple[str, ...] = field(default=())  # "哪几个“办”": the quoted mark the items share
    # The content words just before and after the question's 什么/哪/谁 ("广三铁路在哪年建成" →
    # 广三铁路, 建成): an answer sits between them in the passage.
    frame: tuple[str | None, str | None] = (None, None)
    # The cores of the local documents it names by title (rag.query.titles): 自动驾驶汽车条例.
    titles: tuple[str, ...] = field(default=())
    # A question of several questions ("多久通知？停水时间长了又该怎么办？"): each, analysed alone.
    parts: tuple[Question, ...] = field(default=())
    # The character after 多少/几 ("海拔多少米" → 米, "耗资多少日圆" → 日), beyond `unit`'s fixed list.
    measure: str | None = None
    office: bool = False  # asks for an office (部门, 机关, 负责…), not a person ("谁饰演")


_MEASURE = re.compile(r"(?:多少|几)([\u4e00-\u9fff%])")
_OFFICE = re.compile(r"部门|机关|单位|机构|政府|委员会|组织|负责|主管|牵头|管理")


_PART_END = re.compile(r"[？?]")
MIN_PART = 4  # characters: shorter pieces ("是吗？") are not questions of their own
MAX_PARTS = 4


def _parts(text: str, drop: tuple[str, ...], synonyms: Mapping[str, frozenset[str]] | None) -> tuple[Question, ...]:
    pieces = [x.strip() + "？" for x in _PART_END.split(text) if len(x.strip()) >= MIN_PART]
    if len(pieces) < 2:
        return ()
    # A pasted list of questions is not one question of parts: each part costs a scoring pass.
    return tuple(analyse(x, drop, synonyms, whole=False) for x in pieces[:MAX_PARTS])


_QUOTED = re.compile(r"“([^”]*)”|\"([^\"]*)\"|「([^」]*)」")


def _frame(normalised: str) -> tuple[str | None, str | None]:
    m = _WH.search(normalised)
    if not m:
        return None, None
    import jieba

    def content(text: str) -> list[str]:
        return [w for w in jieba.lcut(text) if w not in FUNCTION_WORDS and not PUNCT_WORD.match(w)]

    before, after = content(normalised[: m.start()]), content(normalised[m.end() :])
    return (before[-1] if before else None), (after[0] if after else None)


def analyse(
    question: str,
    drop: tuple[str, ...] = (),
    synonyms: Mapping[str, frozenset[str]] | None = None,
    whole: bool = True,
) -> Question:
    """The question as every stage reads it. `drop`: the place names of the index (and those the
    question speaks of), which are scope, not topic. `whole`: also analyse its parts."""
    text = question.strip()
    nq = normalise(text)
    intent = match_intent(nq)
    terms = query_terms(text, drop)
    marks: list[str] = []
    if intent.kind == "list":
        quoted = ["".join(g) for g in _QUOTED.findall(nq)]
        marks = [m for m in quoted if 1 <= len(m) <= 2 and CJK.match(m)]
        if "几对" in nq:
            marks.append("与")  # pairs: "执法与服务结合、惩罚与教育互济"
    return Question(
        text=text,
        normalised=nq,
        drop=drop,
        words=question_words(text, drop),
        terms=tuple(terms),
        trigrams=tuple(trigrams(terms)),
        alts=synonym_alts(text, drop, synonyms or {}),
        intent=intent.name,
        kind=intent.kind,
        wants_span=intent.wants_span,
        unit=required_unit(text),
        defined=defined_term(text, intent.kind) if intent.kind in ("definition", "list") else None,
        head=head_noun(text),
        past=bool(PAST_Q.search(nq)),
        future=bool(FUTURE_Q.search(nq)),
        rank=bool(RANK_Q.search(nq)),
        ordinal=bool(ORDINAL_Q.search(nq)),
        marks=tuple(marks),
        frame=_frame(nq),
        titles=named_titles(nq, drop),
        parts=_parts(text, drop, synonyms) if whole else (),
        measure=m.group(1) if (m := _MEASURE.search(nq)) else None,
        office=bool(_OFFICE.search(nq)),
    )
