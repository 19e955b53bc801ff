"""The 时间表 as a table (rag.answer.fact_table) and as answers (rag.answer.timetable): filters,
sorts, passages, CSV / Excel export, and timetable questions answered through the real pipeline
on the two bundled plans, with their refusals — and ordinary questions left to the usual path."""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from rag.answer.cite import answer_dict
from rag.answer.fact_table import (
    COLUMNS,
    EXPORT_COLUMNS,
    deadline_label,
    fact_passage,
    index_facts,
    select_facts,
    sort_facts,
    table_rows,
    write_csv,
    write_xlsx,
)
from rag.answer.pipeline import Pipeline
from rag.answer.timetable import TimetableAsk, timetable_question
from rag.core.errors import InputError
from rag.core.types import Chunk, Document, content_hash
from rag.ingest.chunk import chunk_document
from rag.ingest.facts import Fact, extract_facts

PLAN = """奉贤区数字政府建设“十四五”规划

一、主要任务

（一）2022年重点工作

1. 推进数据共享。年底前完成全区公共数据资源目录编制。

2. 加强执法培训。每年开展执法人员培训不少于40学时。

（二）长期目标

1. 建成一网统管。到2025年，城市运行“一网统管”覆盖率达到100%。

2. 强化评估。由区大数据中心牵头，2023年6月底前完成中期评估。

3. 完善制度。区政府办定期向区人大常委会报告工作情况。
"""


@pytest.fixture(scope="module")
def chunks() -> list[Chunk]:
    doc = Document(
        id=content_hash(PLAN), source="fx.txt", title="奉贤区数字政府建设“十四五”规划", text=PLAN, district="奉贤区"
    )
    return chunk_document(doc)


@pytest.fixture(scope="module")
def facts(chunks: list[Chunk]) -> list[Fact]:
    return extract_facts(chunks)


def _texts(facts: list[Fact]) -> list[str]:
    return [f.text for f in facts]


# -- the table ------------------------------------------------------------------------------


def test_deadline_labels(facts: list[Fact]) -> None:
    labels = {f.text[:6]: deadline_label(f) for f in facts}
    assert sorted(labels.values()) == sorted(["2022年底前", "每年", "到2025年", "2023年6月底前", "定期"])


def test_sort_by_deadline_place_and_section(facts: list[Fact]) -> None:
    by_deadline = sort_facts(facts, "deadline")
    keys = [(f.year or 9999, f.month or 12) for f in by_deadline]
    assert keys == sorted(keys) and by_deadline[0].text.startswith("年底前完成全区公共数据")
    assert _texts(sort_facts(facts, "section")) == _texts(facts)  # document order
    other = [replace(f, place="金山区") for f in facts[:2]]
    assert [f.place for f in sort_facts([*facts, *other], "place")][:2] == ["奉贤区", "奉贤区"]
    with pytest.raises(InputError, match="deadline"):
        sort_facts(facts, "colour")


def test_select_facts_filters(facts: list[Fact]) -> None:
    assert {f.year for f in select_facts(facts, year=2023)} == {2023}
    assert [(f.year, f.month) for f in select_facts(facts, before="2023-06")] == [(2022, 12), (2023, 6)]
    assert select_facts(facts, place="奉贤") == sort_facts(facts)
    assert select_facts(facts, place="金山区") == []
    only = select_facts(facts, text="大数据中心 评估")  # every word must occur: lead and text
    assert _texts(only) == ["由区大数据中心牵头，2023年6月底前完成中期评估。"]
    assert select_facts(facts, text="一网统管 评估") == []
    assert select_facts(facts, text="推进数据共享")  # the task (section) is searched too
    with pytest.raises(InputError, match="YYYY-MM"):
        select_facts(facts, before="明年")


def test_passage_of_each_fact_holds_its_sentence(facts: list[Fact], chunks: list[Chunk]) -> None:
    for f in facts:
        p = fact_passage(f, chunks)
        assert p is not None and p.quote in p.chunk.text and p.chunk.section_path == f.section_path
    stranger = replace(facts[0], text="这句话不在任何段落里。")
    assert fact_passage(stranger, chunks) is None


def test_csv_and_xlsx_hold_the_filtered_rows(facts: list[Fact], tmp_path: Path) -> None:
    rows = select_facts(facts, before="2025-12")
    with open(write_csv(rows, tmp_path / "t.csv"), encoding="utf-8-sig", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == list(EXPORT_COLUMNS)
    assert [r["承诺内容"] for r in table] == _texts(rows)
    assert [r["年"] for r in table] == [str(f.year) for f in rows]
    book = openpyxl.load_workbook(write_xlsx(rows, tmp_path / "t.xlsx"))
    sheet = book["时间表"]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == list(EXPORT_COLUMNS) and sheet.freeze_panes == "A2"
    assert [v[EXPORT_COLUMNS.index("承诺内容")] for v in values[1:]] == _texts(rows)
    assert [v[EXPORT_COLUMNS.index("年")] for v in values[1:]] == [f.year for f in rows]
    assert table_rows(rows)[0][: len(COLUMNS)][0] == 1


# -- which questions are timetable questions -------------------------------------------------


@pytest.mark.parametrize(
    ("question", "ask"),
    [
        ("金山区2022年底前要完成哪些任务？", TimetableAsk("before", 2022, 12)),
        ("哪些工作要在2025年前完成", TimetableAsk("before", 2025, 12)),
        ("静安区每年要做什么", TimetableAsk("every_year")),
        ("到2025年，静安区需要落实哪些重点任务？", TimetableAsk("before", 2025, 12)),
        ("2023年6月底之前金山要完成什么工作", TimetableAsk("before", 2023, 6)),
        ("金山区2024年要干什么？", TimetableAsk("year", 2024)),
        ("静安区每一年都得开展哪些工作？", TimetableAsk("every_year")),
        ("2022 年以前有哪些事项必须办完？", TimetableAsk("before", 2022, 12)),
    ],
)
def test_timetable_questions_are_recognised(question: str, ask: TimetableAsk) -> None:
    assert timetable_question(question) == ask


@pytest.mark.parametrize(
    "question",
    [
        "金山区行政复议改革期限",
        "金山区的行政复议体制改革要在什么时候完成？",
        "到2035年静安区法治政府建设要达到什么水平？",
        "到2035年，法治政府建设要达到什么目标？",  # the plan's vision, answered from its passage
        "静安区每年至少组织几次行政执法案卷评查？",
        "静安区每年给行政执法人员开展专题培训不少于多少学时？",
        "静安区在法律顾问方面完成了什么工作？",  # no date: asks about a topic, not a deadline
        "2022年世界杯的冠军是哪支球队？",
    ],
)
def test_other_questions_are_not_timetable_questions(question: str) -> None:
    assert timetable_question(question) is None


# -- answered through the real pipeline ------------------------------------------------------


def _items(answer: str) -> list[str]:
    return [line for line in answer.splitlines() if re.match(r"\d+\. ", line)]


def _check_listed(a: dict[str, Any], places: set[str]) -> None:
    """Every item is one line with its own [n]; every citation names its document, section path
    and place, and its quote is text of its passage."""
    assert not a["abstained"] and a["timetable"]["items"] == len(a["citations"])
    items = _items(a["answer"])
    assert len(items) == len(a["citations"]) >= 1
    for n, (line, c) in enumerate(zip(items, a["citations"], strict=True), 1):
        assert line.startswith(f"{n}. ") and line.endswith(f"[{n}]") and c["n"] == n
        assert c["quote"] in c["text"] and c["quote"] in line
        assert c["title"].endswith("规划") and " › " in c["section"] and c["district"] in places
    assert {c["district"] for c in a["citations"]} == places


@pytest.mark.parametrize("question", ["金山区2022年底前要完成哪些任务？", "到2022年底，金山区需要落实哪些工作？"])
def test_jinshan_due_by_end_of_2022(pipeline: Pipeline, question: str) -> None:
    a = answer_dict(pipeline.ask(question))
    _check_listed(a, {"金山区"})
    quotes = " ".join(c["quote"] for c in a["citations"])
    assert "完成执法证件换发" in quotes and "一网通办" in quotes  # two of the plan's 2022 deadlines
    assert "2024年" not in quotes and "2025年" not in quotes and "每年" not in quotes
    assert a["answer"].startswith("金山区截至2022年底要完成的任务")


@pytest.mark.parametrize("question", ["哪些工作要在2025年前完成", "2025年以前要完成什么任务？"])
def test_both_plans_due_by_2025(pipeline: Pipeline, question: str) -> None:
    a = answer_dict(pipeline.ask(question))
    _check_listed(a, {"金山区", "静安区"})
    assert "金山区：" in a["answer"] and "静安区：" in a["answer"]  # grouped by place
    quotes = " ".join(c["quote"] for c in a["citations"])
    assert "2023年底前完成证明事项清理" in quotes and "于2024年组织开展本规划实施终期调研评估" in quotes
    assert "2035" not in quotes
    facts = index_facts(pipeline.index)
    due = [f for f in facts if f.year is not None and f.year <= 2025]
    assert len(a["citations"]) == len(due)


@pytest.mark.parametrize("question", ["静安区每年要做什么", "静安区每年都要开展哪些工作？"])
def test_jingan_every_year(pipeline: Pipeline, question: str) -> None:
    a = answer_dict(pipeline.ask(question))
    _check_listed(a, {"静安区"})
    quotes = " ".join(c["quote"] for c in a["citations"])
    assert "专题培训不少于40学时" in quotes and "每年不少于2次研究部署" in quotes
    assert not re.search(r"20\d\d年底前", quotes)


def test_an_explicit_district_scopes_the_list(pipeline: Pipeline) -> None:
    a = answer_dict(pipeline.ask("2022年底前要完成哪些任务", district="静安区"))
    _check_listed(a, {"静安区"})
    assert "行政复议体制" in a["answer"]


def test_the_json_contract_keeps_its_shape(pipeline: Pipeline) -> None:
    listed = answer_dict(pipeline.ask("静安区每年要做什么"))
    usual = answer_dict(pipeline.ask("静安区审批办结时限压减了多少？"))
    assert "timetable" not in usual
    assert set(usual) <= set(listed) and set(listed) - set(usual) == {"timetable"}
    assert listed["answer_span"] is None and listed["mode"] == "extractive"
    assert listed["retrieved"] and {h["district"] for h in listed["retrieved"]} == {"静安区"}
    assert set(listed["timings_ms"]) == {"retrieve", "answer", "total"}


def test_stream_ends_with_the_listed_answer(pipeline: Pipeline) -> None:
    parts = list(pipeline.ask_stream("金山区2022年底前要完成哪些任务？"))
    final = parts[-1]
    assert "".join(p for p in parts[:-1] if isinstance(p, str)) == final.answer  # type: ignore[union-attr]


def test_an_ordinary_deadline_question_takes_the_usual_path(pipeline: Pipeline) -> None:
    a = answer_dict(pipeline.ask("金山区行政复议改革期限"))
    assert "timetable" not in a and not a["abstained"]
    assert "2022年前" in a["answer"] and a["citations"][0]["district"] == "金山区"


def test_a_place_not_indexed_is_refused_as_usual(pipeline: Pipeline) -> None:
    a = answer_dict(pipeline.ask("徐汇区2022年底前要完成哪些任务？"))
    assert a["abstained"] and "知识库中没有徐汇区的文件" in a["answer"] and "timetable" not in a


@pytest.mark.parametrize(
    ("question", "year"),
    [("金山区2023年要完成哪些任务？", "2023"), ("2019年底前要完成哪些工作", "2019"), ("2040年前要做什么？", "2040")],
)
def test_a_year_no_commitment_names_is_refused(pipeline: Pipeline, question: str, year: str) -> None:
    a = answer_dict(pipeline.ask(question))
    assert a["abstained"] and a["citations"] == [] and a["timetable"]["items"] == 0
    assert f"没有期限在{year}年的承诺" in a["answer"]
    named = re.search(r"有期限的年份：([\d、]+)年", a["answer"])
    assert named and year not in named.group(1).split("、")
