"""Judging one eval line: keys, refusals, and what counts as district confusion."""

from __future__ import annotations

from typing import Any

from rag.evaluate import judge


def _answer(text: str, districts: list[str], abstained: bool = False) -> dict[str, Any]:
    cites = [{"district": d, "text": text} for d in districts]
    return {"answer": text, "abstained": abstained, "citations": cites, "retrieved": cites}


def test_keys_inner_list_means_any_one() -> None:
    row = {"question": "q", "keys": ["甲", ["乙", "丙"]]}
    assert judge(row, _answer("甲丙", [])).answer_ok
    assert not judge(row, _answer("乙丙", [])).answer_ok


def test_unanswerable_must_abstain() -> None:
    row = {"question": "q", "kind": "unanswerable"}
    assert judge(row, _answer("抱歉", [], abstained=True)).answer_ok
    assert not judge(row, _answer("2022年", ["金山区"])).answer_ok


def test_confusion_needs_the_question_to_name_its_district() -> None:
    named = {"question": "金山区的一业一证改革是什么？", "keys": ["一业一证"], "district": "金山区"}
    short = {"question": "金山那边一业一证改革是什么？", "keys": ["一业一证"], "district": "金山区"}
    unscoped = {"question": "一业一证改革是什么？", "keys": ["一业一证"], "district": "金山区"}
    other = _answer("一业一证", ["浦东新区", "金山区"])
    assert judge(named, other).confused and judge(short, other).confused
    assert not judge(unscoped, other).confused
    assert not judge(named, _answer("一业一证", ["金山区"])).confused


def test_question_tables_do_not_overreach() -> None:
    from rag.answer.pipeline import KIND_NAMES, REALTIME
    from rag.answer.score import defines
    from rag.query.terms import question_kind

    assert REALTIME.search("明天会下雨吗") and not REALTIME.search("本周期内要完成多少个项目？")
    assert question_kind("哪几年完成改造？") == "date" and question_kind("要实现哪几个“办”？") == "list"
    assert not defines("推进一网通办，即时办结。", "一网通办") and defines("一网通办：政务服务…", "一网通办")
    assert not KIND_NAMES["regulation"].search("电动自行车停放有什么规定？")
    assert KIND_NAMES["regulation"].search("条例对此怎么说？") and KIND_NAMES["plan"].search("规划里怎么说？")
