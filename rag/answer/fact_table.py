"""The 时间表 as a table: the fact rows of an index generation, filtered, sorted, each with its
cited passage, and written to CSV / Excel (pandas + openpyxl).

The app's 时间表 tab and the timetable answers (rag.answer.timetable) both read from here, so a
row the tab shows and an item an answer lists are the same fact with the same passage.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.core.errors import InputError
from rag.core.text import normalise, split_sentences
from rag.core.types import Chunk
from rag.index.generations import Index
from rag.ingest.facts import Fact, filter_facts, parse_before, plan_facts

SORTS = ("deadline", "place", "section")
# Column label → what it shows; the table in the app and the CSV / Excel files use these labels.
COLUMNS = ("序号", "期限", "地区", "任务", "承诺内容", "牵头单位", "目标", "章节", "文件")
EXPORT_COLUMNS = (*COLUMNS[:2], "年", "月", "类型", *COLUMNS[2:], "doc_id")
KIND_NAMES = {"before": "之前", "by": "到", "during": "年内", "every_year": "每年/定期", "plan_period": "规划期内"}
_KIND_RANK = {k: i for i, k in enumerate(("before", "by", "during", "every_year", "plan_period"))}
_YEARLY = re.compile(r"每年|年度|每一年")

_cache: dict[str, list[Fact]] = {}
_cache_lock = threading.Lock()


def index_facts(index: Index) -> list[Fact]:
    """Every fact of the index's plans, in document order (computed once per generation)."""
    key = str(index.gen)
    with _cache_lock:
        facts = _cache.get(key)
        if facts is None:
            facts = plan_facts(index.chunks, index.documents)
            if len(_cache) >= 4:
                _cache.clear()
            _cache[key] = facts
    return facts


def deadline_label(f: Fact) -> str:
    """How a fact's deadline reads: 2022年底前, 2023年6月底前, 到2025年, 2024年内, 每年, 定期, 规划期内."""
    if f.kind == "every_year":
        return "每年" if _YEARLY.search(f.text) else "定期"
    if f.kind == "plan_period" or f.year is None:
        return "规划期内"
    if f.kind == "before":
        if f.month is None:
            return f"{f.year}年前"
        return f"{f.year}年底前" if f.month == 12 else f"{f.year}年{f.month}月底前"
    if f.kind == "by":
        return f"到{f.year}年"
    return f"{f.year}年内"


def deadline_key(f: Fact) -> tuple[int, int, int]:
    """Earliest deadline first; recurring and plan-period rows after every dated one."""
    return (f.year or 9999, f.month or 12, _KIND_RANK.get(f.kind, 9))


def sort_facts(facts: Sequence[Fact], by: str = "deadline") -> list[Fact]:
    """Facts by deadline, by place (then deadline) or by section (document order within each
    document). Ties keep document order."""
    if by not in SORTS:
        raise InputError(f"排序方式应为 {'/'.join(SORTS)}：{by!r} (sort must be one of {', '.join(SORTS)})")
    pos = {id(f): i for i, f in enumerate(facts)}
    if by == "deadline":
        return sorted(facts, key=lambda f: (deadline_key(f), f.place or "", pos[id(f)]))
    if by == "place":
        return sorted(facts, key=lambda f: (f.place or "", deadline_key(f), pos[id(f)]))
    return sorted(facts, key=lambda f: (f.place or "", f.title, pos[id(f)]))


def _haystack(f: Fact) -> str:
    return normalise(" ".join(x for x in (f.place, f.title, f.section, f.text, f.lead, f.target) if x))


def select_facts(
    facts: Iterable[Fact],
    place: str | None = None,
    year: int | None = None,
    before: str | None = None,
    text: str | None = None,
    sort: str = "deadline",
) -> list[Fact]:
    """The rows the filters keep, sorted: place (金山 or 金山区), year, due by YYYY-MM, and free
    text (every space-separated word must occur in the row's place, document, section, text,
    lead or target)."""
    if before:
        parse_before(before)  # a bad date is an input error, before any filtering
    out = filter_facts(facts, place or None, year, before or None)
    words = [normalise(w) for w in (text or "").split() if w.strip()]
    if words:
        out = [f for f in out if all(w in _haystack(f) for w in words)]
    return sort_facts(out, sort)


@dataclass(frozen=True)
class Passage:
    """The passage a fact was read from, and its sentence as the passage writes it."""

    chunk: Chunk
    quote: str


def fact_passage(f: Fact, chunks: Iterable[Chunk]) -> Passage | None:
    """The chunk of f's document and section whose text holds f's sentence."""
    for c in chunks:
        if c.doc_id != f.doc_id or c.section_path != f.section_path:
            continue
        for raw in split_sentences(c.text, drop_blank=True):
            if re.sub(r"\s+", "", raw) == f.text:
                return Passage(c, raw.strip())
    return None


def fact_row(f: Fact, n: int) -> list[Any]:
    """One row of the table, in COLUMNS order (n is its 序号)."""
    return [n, deadline_label(f), f.place or "", f.task, f.text, f.lead or "", f.target or "", f.section, f.title]


def table_rows(facts: Sequence[Fact]) -> list[list[Any]]:
    """The table the app shows: one row per fact, numbered from 1."""
    return [fact_row(f, i) for i, f in enumerate(facts, 1)]


def facts_frame(facts: Sequence[Fact]) -> Any:
    """A pandas DataFrame of the facts in EXPORT_COLUMNS order (with year, month and kind)."""
    import pandas as pd

    records = []
    for n, f in enumerate(facts, 1):
        row = dict(zip(COLUMNS, fact_row(f, n), strict=True))
        row.update({"年": f.year, "月": f.month, "类型": KIND_NAMES.get(f.kind, f.kind), "doc_id": f.doc_id})
        records.append(row)
    frame = pd.DataFrame.from_records(records, columns=list(EXPORT_COLUMNS))
    return frame.astype({"年": "Int64", "月": "Int64"})


def write_csv(facts: Sequence[Fact], path: Path) -> Path:
    """The facts as UTF-8 CSV with a BOM (so that Excel reads the Chinese)."""
    facts_frame(facts).to_csv(path, index=False, encoding="utf-8-sig")
    return path


def write_xlsx(facts: Sequence[Fact], path: Path) -> Path:
    """The facts as an Excel workbook: one sheet 时间表, header frozen, readable column widths."""
    import pandas as pd

    frame = facts_frame(facts)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name="时间表")
        sheet = writer.sheets["时间表"]
        sheet.freeze_panes = "A2"
        widths = {"序号": 6, "期限": 14, "年": 7, "月": 5, "类型": 10, "地区": 9, "任务": 24, "承诺内容": 60}
        for i, name in enumerate(frame.columns):
            letter = sheet.cell(row=1, column=i + 1).column_letter
            sheet.column_dimensions[letter].width = widths.get(str(name), 28)
    return path
