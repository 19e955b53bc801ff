"""The 时间表 of a plan: every dated commitment (deadline, target year, recurrence) as a fact row.

Works on a document's chunks (no embedding): each sentence of a forward-looking section that
carries a time marker becomes one `Fact` with its year, month, kind, lead unit and target figure.
Retrospective sections (十三五, 成效, 发展现状/背景, 回顾) and past-tense sentences are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rag.core.errors import InputError
from rag.core.text import place_stem, split_sentences
from rag.core.types import SECTION_SEP, Chunk
from rag.ingest.paragraphs import CN_NUM

KINDS = ("before", "by", "during", "every_year", "plan_period")

# Sections that look back (achievements, problems, situation) or are not plan text at all.
_SKIP_SECTION = re.compile(r"十三五|成效|发展现状|发展背景|回顾|主要问题|形势|附录|名词解释|文件信息|通知$")
_SKIP_TOP = ("前言",)  # the preamble states the document's scope, not tasks
_MARKER = re.compile(rf"^\s*(?:[{CN_NUM}]+、|[（(][{CN_NUM}\d]+[）)]|\d{{1,3}}[.．、]|第[{CN_NUM}\d]+[条章节编])\s*")

_YEAR = r"(20\d{2})\s*年"
_BEFORE = re.compile(
    rf"{_YEAR}\s*(?:(?:1[0-2]|[1-9])\s*月\s*底?|年?\s*底|年中|上半年)?\s*之?前|(?<!\d年)(?:年\s*底|年中|上半年)\s*之?前"
)
_BY = re.compile(rf"(?:到|至)\s*{_YEAR}|{_YEAR}\s*(?:基本|全面|建成)")
_DURING = re.compile(rf"{_YEAR}\s*(?:内|期间|度内)|于\s*{_YEAR}|{_YEAR}")
_EVERY = re.compile(r"每年|每季度?|每半年|每月|定期|年度报告|报告年度")
_PERIOD = re.compile(r"十四五[”\"’]?\s*(?:期间|时期)|规划期内")
_ANY_YEAR = re.compile(_YEAR)
_MONTH = re.compile(r"(?<!\d)(1[0-2]|[1-9])\s*月")
# Past tense: what was done, not what will be (已完成, 取得了, 实现了…).
_PAST = re.compile(r"已经|已[^有]|(?:取得|实现|完成|建成|获得)了|圆满|先后")
_FUTURE = re.compile(r"(?:到|至)\s*20\d{2}|前|将|要|力争|确保|每年|定期")

_LEAD_NAMED = re.compile(
    r"(?:责任单位|牵头单位|负责单位)\s*[:：]\s*([^，。；,;）)]+)|由\s*([^\s，。；由]{2,14}?)\s*(?:牵头|负责)"
)
_UNIT = r"区(?:[\u4e00-\u9fff]{0,8}?)(?:政府办|政府|办公室|办|局|委员会|院|中心|部)"
_LEAD_SUBJECT = re.compile(rf"(?:^|[，,])\s*({_UNIT})(?=\s*[\u4e00-\u9fff])")
_TARGET = re.compile(
    r"(?:不少于|不低于|不超过|至少|达到|达|超过|覆盖率达到)\s*[^，。；,;、]{0,8}?\d+(?:\.\d+)?\s*"
    r"(?:%|％|学时|小时|个|次|家|项|人|天|件)|\d+(?:\.\d+)?\s*(?:%|％)"
)


@dataclass(frozen=True)
class Fact:
    """One dated commitment of a plan."""

    place: str | None  # the district the plan governs
    doc_id: str
    title: str
    section_path: tuple[str, ...]
    task: str  # innermost heading without its marker
    text: str  # the commitment sentence, whitespace removed
    year: int | None
    month: int | None
    kind: str  # one of KINDS
    lead: str | None = None  # the responsible unit when the sentence names one
    target: str | None = None  # the figure to reach (100%, 不少于40学时)

    @property
    def section(self) -> str:
        return SECTION_SEP.join(self.section_path)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["section_path"] = list(self.section_path)
        d["section"] = self.section
        return d


def _task(path: tuple[str, ...]) -> str:
    return _MARKER.sub("", path[-1]).strip() if path else ""


def _retrospective(path: tuple[str, ...]) -> bool:
    if path and path[0] in _SKIP_TOP:
        return True
    return any(_SKIP_SECTION.search(h) for h in path)


def _month(sentence: str, span_text: str) -> int | None:
    if re.search(r"年\s*底", span_text):
        return 12
    if re.search(r"年中|上半年", span_text):
        return 6
    m = _MONTH.search(sentence)
    return int(m.group(1)) if m else None


def _timing(s: str) -> tuple[str, int | None, int | None] | None:
    """(kind, year, month) of a sentence's time marker, or None when it has none."""
    for kind, pattern in (("before", _BEFORE), ("by", _BY), ("during", _DURING)):
        m = pattern.search(s)
        if m:
            year = next((int(g) for g in m.groups() if g), None)
            return kind, year, _month(s, m.group())
    if _EVERY.search(s):
        return "every_year", None, None
    if _PERIOD.search(s):
        return "plan_period", None, None
    return None


def _lead(s: str) -> str | None:
    m = _LEAD_NAMED.search(s)
    if m:
        return next(g for g in m.groups() if g).strip()
    m = _LEAD_SUBJECT.search(s)
    return m.group(1) if m else None


def _context_year(path: tuple[str, ...], earlier: Sequence[str]) -> int | None:
    """The year a year-less 年底前 refers to: the nearest heading that names one, else the
    nearest earlier sentence of the same passage."""
    for text in [*reversed(path), *reversed(earlier)]:
        m = _ANY_YEAR.search(text)
        if m:
            return int(m.group(1))
    return None


def extract_facts(chunks: Iterable[Chunk]) -> list[Fact]:
    """Dated commitments of one plan-like document's chunks, in document order."""
    out: list[Fact] = []
    seen: set[tuple[str, str]] = set()
    for c in sorted(chunks, key=lambda c: c.order):
        if _retrospective(c.section_path):
            continue
        earlier: list[str] = []
        for raw in split_sentences(c.text, drop_blank=True):
            s = re.sub(r"\s+", "", raw)
            timing = _timing(s)
            prior = list(earlier)
            earlier.append(s)
            if timing is None or (_PAST.search(s) and not _FUTURE.search(s)):
                continue
            kind, year, month = timing
            if year is None and kind in ("before", "during"):
                year = _context_year(c.section_path, prior)
            if year is not None and year <= 2020:
                continue  # a past year: an achievement, not a commitment
            if (c.doc_id, s) in seen:
                continue
            seen.add((c.doc_id, s))
            t = _TARGET.search(s)
            out.append(
                Fact(
                    place=c.district,
                    doc_id=c.doc_id,
                    title=c.title,
                    section_path=c.section_path,
                    task=_task(c.section_path),
                    text=s,
                    year=year,
                    month=month,
                    kind=kind,
                    lead=_lead(s),
                    target=re.sub(r"\s+", "", t.group()) if t else None,
                )
            )
    return out


def plan_facts(chunks: Iterable[Chunk], documents: Iterable[dict[str, Any]]) -> list[Fact]:
    """Facts of every plan in an index: chunks grouped by doc_id, only documents of kind plan."""
    plans = {d.get("doc_id") for d in documents if d.get("kind", "plan") == "plan"}
    by_doc: dict[str, list[Chunk]] = {}
    for c in chunks:
        if c.doc_id in plans:
            by_doc.setdefault(c.doc_id, []).append(c)
    return [f for doc_chunks in by_doc.values() for f in extract_facts(doc_chunks)]


def parse_before(value: str) -> tuple[int, int]:
    """YYYY-MM: "2023-06" or "2023" → (2023, 6) / (2023, 12); a clear error otherwise."""
    m = re.fullmatch(r"\s*(\d{4})(?:-(\d{1,2}))?\s*", value or "")
    if not m or not 1 <= int(m.group(2) or 12) <= 12:
        raise InputError(f"日期格式应为 YYYY-MM：{value!r} (before must be YYYY-MM, got {value!r})")
    return int(m.group(1)), int(m.group(2) or 12)


def filter_facts(
    facts: Iterable[Fact], place: str | None = None, year: int | None = None, before: str | None = None
) -> list[Fact]:
    """Facts of one place (金山 or 金山区), of one year, or due by a YYYY-MM (inclusive)."""
    out = list(facts)
    if place:
        stem = place_stem(place.strip())
        out = [f for f in out if f.place and place_stem(f.place) == stem]
    if year is not None:
        out = [f for f in out if f.year == year]
    if before:
        y, m = parse_before(before)
        out = [f for f in out if f.year is not None and (f.year, f.month or 12) <= (y, m)]
    return out
