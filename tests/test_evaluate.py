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
