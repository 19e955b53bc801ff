"""Questions the 时间表 answers: "金山区2022年底前要完成哪些任务？", "哪些工作要在2025年前完成",
"静安区每年要做什么" — a list of the plans' dated commitments, not one passage.

A timetable question asks which tasks / work / items (哪些任务, 什么工作, 要做什么 …) fall due
before a date (2022年底前, 2023年6月前, 到2025年), in a year (2024年) or every year (每年). It is
answered from the fact rows of the index (rag.ingest.facts): every item listed in deadline order
with its own citation (document, section path, place). The refusals stay those of the pipeline:
a question naming a place the index lacks is left to its usual refusal, and a year no
commitment names is refused here, with the years that are named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.answer.fact_table import Passage, deadline_key, deadline_label, fact_passage, index_facts
from rag.core.types import Answer, Chunk, Citation, Hit
from rag.index.generations import Index
from rag.ingest.facts import Fact
from rag.query.scope import detect_scope

MAX_ITEMS = 40  # longer lists end with a pointer to the 时间表 tab

_Y = r"(20\d{2})\s*年"
_EVERY = re.compile(r"每年|每一年|年年|每个年度|每年度")
_BEFORE_MONTH = re.compile(rf"{_Y}\s*(1[0-2]|[1-9])\s*月\s*(?:份|底|末)?\s*(?:之|以)?前")
_BEFORE = re.compile(rf"{_Y}\s*(?:年?底|年?末)?\s*(?:之|以)?前|(?:到|至|截至|截止到?)\s*{_Y}")
_IN_YEAR = re.compile(_Y)
# Asks for the items themselves: 哪些任务, 什么工作, 要做什么, 完成哪些 … Not 什么时候, 什么水平,
# nor 什么目标: "到2035年要达到什么目标" asks for the plan's vision of that year, one passage.
_ASKS_ITEMS = re.compile(
    r"(?:哪些|哪几项|哪几件|什么|啥)(?:重点|主要|具体|关键)?(?:任务|工作|事项|事情|事|举措|措施|时间节点)"
    r"|(?:做|干|完成|落实|办|推进|开展)(?:些|好)?(?:什么|哪些|啥)"
)


@dataclass(frozen=True)
class TimetableAsk:
    """What a timetable question asks for: due by (year, month), in a year, or every year."""

    kind: str  # "before" | "year" | "every_year"
    year: int | None = None
    month: int | None = None

    def describe(self) -> str:
        if self.kind == "every_year":
            return "每年"
        if self.kind == "year":
            return f"{self.year}年"
        return f"截至{self.year}年底" if self.month in (None, 12) else f"截至{self.year}年{self.month}月底"

    def keeps(self, f: Fact) -> bool:
        if self.kind == "every_year":
            return f.kind == "every_year"
        if f.year is None:
            return False
        if self.kind == "year":
            return f.year == self.year
        return (f.year, f.month or 12) <= (self.year or 0, self.month or 12)


def timetable_question(question: str) -> TimetableAsk | None:
    """The timetable request in a question, or None when it asks something else."""
    q = re.sub(r"\s+", "", question)
    if not _ASKS_ITEMS.search(q):
        return None
    if _EVERY.search(q):
        return TimetableAsk("every_year")
    m = _BEFORE_MONTH.search(q)
    if m:
        return TimetableAsk("before", int(m.group(1)), int(m.group(2)))
    m = _BEFORE.search(q)
    if m:
        return TimetableAsk("before", int(next(g for g in m.groups() if g)), 12)
    m = _IN_YEAR.search(q)
    if m:
        return TimetableAsk("year", int(m.group(1)))
    return None


def _years(facts: list[Fact]) -> list[int]:
    return sorted({f.year for f in facts if f.year is not None})


def _refusal(question: str, ask: TimetableAsk, places: list[str], facts: list[Fact]) -> Answer:
    where = "、".join(places) if places else "已收录"
    years = _years(facts)
    named = f"规划中有期限的年份：{'、'.join(map(str, years))}年。" if years else ""
    if ask.kind == "every_year":
        text = f"抱歉，{where}的规划中没有每年或定期开展的工作。"
    else:
        text = f"抱歉，{where}的规划中没有期限在{ask.year}年的承诺，无法列出{ask.describe()}要完成的任务。{named}"
    return Answer(question, text, True, (), (), {}, {"timetable": {"asks": ask.describe(), "items": 0}})


def timetable_answer(
    question: str, districts: list[str], index: Index, by_doc: dict[str, list[Chunk]]
) -> Answer | None:
    """The listed, cited answer to a timetable question from the index's fact rows; None when the
    question is not one, names a place the index lacks (the pipeline refuses that as usual), or
    the places asked about have no plan with dated commitments."""
    ask = timetable_question(question)
    if ask is None or detect_scope(question, index.districts).unknown:
        return None
    facts = [f for f in index_facts(index) if not districts or f.place in districts]
    if not facts:
        return None
    places = list(dict.fromkeys(districts))
    if ask.kind != "every_year" and ask.year not in _years(facts):
        years = _years(facts)
        # A year no commitment names: refused when asked for exactly, or when it lies outside
        # the years the plans speak of at all (2019年前, 2040年前).
        if ask.kind == "year" or not years or not years[0] <= (ask.year or 0) <= years[-1]:
            return _refusal(question, ask, places, facts)
    kept = sorted((f for f in facts if ask.keeps(f)), key=lambda f: (f.place or "", deadline_key(f)))
    if not kept:
        return _refusal(question, ask, places, facts)
    return _listed(question, ask, kept, by_doc)


def _listed(question: str, ask: TimetableAsk, facts: list[Fact], by_doc: dict[str, list[Chunk]]) -> Answer:
    shown: list[tuple[Fact, Passage]] = []
    for f in facts:
        p = fact_passage(f, by_doc.get(f.doc_id, ()))
        if p is not None:  # a fact always comes from a passage of its index; never cite without one
            shown.append((f, p))
    if not shown:
        return _refusal(question, ask, [], facts)
    head = shown[:MAX_ITEMS]
    places = list(dict.fromkeys(f.place for f, _ in head))
    what = "每年（含定期）要做的工作" if ask.kind == "every_year" else f"{ask.describe()}要完成的任务"
    where = "、".join(p for p in places if p) if len(places) == 1 else ""
    lines = [f"{where}{what}共{len(shown)}项（按期限排列）："]
    citations: list[Citation] = []
    place: str | None = None
    for f, p in head:
        if len(places) > 1 and f.place != place:
            lines.append(f"{f.place or '其他'}：")
        place = f.place
        n = len(citations) + 1
        citations.append(Citation(n, p.chunk, p.quote, 1.0))
        task = f"{f.task}：" if f.task else ""
        lines.append(f"{n}. {deadline_label(f)}｜{task}{p.quote}[{n}]")
    if len(shown) > len(head):
        lines.append(f"……另有{len(shown) - len(head)}项，见“时间表”页。")
    hits = tuple(Hit(c, 1.0) for c in dict.fromkeys(c.chunk for c in citations))[:10]
    extra = {"answer_span": None, "timetable": {"asks": ask.describe(), "items": len(shown)}}
    return Answer(question, "\n".join(lines), False, tuple(citations), hits, {}, extra)
