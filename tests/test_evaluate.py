"""Judging one eval line: keys, refusals, and what counts as district confusion."""

from __future__ import annotations

from typing import Any

from rag.evaluate import judge


def _answer(text: str, districts: list[str], abstained: bool = False) -> dict[str, Any]:
    cites = [{"district": d, "text": text} for d in districts]
    return {
        "answer": text,
        "abstained": abstained,
        "citations": cites,
        "retrieved": cites,
        "timings_ms": {"total": 1.0},
    }


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
    from rag.query.question import analyse

    assert REALTIME.search("明天会下雨吗") and not REALTIME.search("本周期内要完成多少个项目？")
    assert analyse("哪几年完成改造？").kind == "date" and analyse("要实现哪几个“办”？").kind == "list"
    assert not defines("推进一网通办，即时办结。", "一网通办") and defines("一网通办：政务服务…", "一网通办")
    assert not KIND_NAMES["regulation"].search("电动自行车停放有什么规定？")
    assert KIND_NAMES["regulation"].search("条例对此怎么说？") and KIND_NAMES["plan"].search("规划里怎么说？")


def test_blind_failures_stay_out_of_the_report() -> None:
    from rag.evaluate import Report, markdown_report

    row = {"id": "b1", "question": "某市的罚款是多少？", "keys": ["五千元"]}
    failed = judge(row, _answer("抱歉", [], abstained=True))
    reports = [
        Report("qa_x_blind", [failed]),
        Report(
            "qa_dev",
            [judge({"id": "d1", "question": "某区的补贴是多少？", "keys": ["三千元"]}, _answer("抱歉", [], True))],
        ),
    ]
    public = markdown_report(reports)
    assert "b1" not in public and "某市的罚款" not in public
    assert "d1" in public  # a tuning set's failures are shown
    assert "b1" in markdown_report(reports, sealed=True)


def test_one_intent_table_reads_every_question_form() -> None:
    """The fine intent beside the answer type sentence scoring checks (its kind)."""
    from rag.query.question import analyse

    cases = {
        "这项改革在哪一年完成？": ("when", "date"),
        "共培训了多少名律师？": ("how_many", "number"),
        "“两区一堡”指的是什么？": ("what_is", "definition"),
        "包括哪些服务站？": ("which_ones", "list"),
        "由哪个部门牵头？": ("who", "who"),
        "司令部设在哪里？": ("where", "fact"),
        "为什么要设立这个中心？": ("why", "fact"),
        "如何申请补贴？": ("how", "fact"),
        "外地户籍能否申请？": ("yes_no", "fact"),
        "他最早创作的小说叫什么名字？": ("which", "fact"),
        "这种节奏型称为什么？": ("which", "fact"),  # 称为什么 is not 为什么
        "由哪家公司运营？": ("which", "fact"),
        "本条例的适用范围。": ("fact", "fact"),
    }
    for text, (intent, kind) in cases.items():
        q = analyse(text)
        assert (q.intent, q.kind) == (intent, kind), text
