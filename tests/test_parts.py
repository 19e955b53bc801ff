"""A question of two questions is answered in both parts, from the one document it asks of."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import pipeline_over, small_index

from rag.answer.pipeline import Pipeline
from rag.index.embed import Embedder
from rag.query.question import analyse

WATER = (
    "某县农村饮水工程管理办法\n"
    "第一条 为了保障农村饮水安全，制定本办法。\n"
    "第九条 供水单位因检修需要临时停止供水的，应当提前二十四小时通知用户。\n"
    "第十条 用户逾期三十日未交水费的，供水单位可以中止供水。\n"
    "第十一条 用户补交水费后，供水单位应当在十二小时内恢复供水。\n"
    "第十二条 供水单位应当每季度向社会公布水质检测结果。\n"
)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Pipeline]:
    with pipeline_over(tmp_path_factory.mktemp("parts"), embedder, {"water.txt": WATER}) as p:
        yield p


def test_the_parts_of_a_question_are_analysed_alone() -> None:
    q = analyse("逾期多少天不交水费会被中止供水？补交以后多久恢复供水？")
    assert [p.text for p in q.parts] == ["逾期多少天不交水费会被中止供水？", "补交以后多久恢复供水？"]
    assert not q.parts[0].parts
    assert not analyse("逾期多少天不交水费会被中止供水？").parts


def test_each_part_gets_its_sentence(pipe: Pipeline) -> None:
    a = pipe.ask("用户逾期多少天不交水费会被中止供水？补交水费以后供水单位多久恢复供水？")
    assert not a.abstained, a.answer
    assert "三十日" in a.answer and "十二小时" in a.answer, a.answer
    assert "二十四小时" not in a.answer and "水质" not in a.answer, a.answer


def test_a_pasted_list_of_questions_is_cut_to_a_few_parts() -> None:
    from rag.query.question import MAX_PARTS

    q = analyse("".join(f"第{i}个问题是什么内容？" for i in range(20)))
    assert len(q.parts) == MAX_PARTS


def test_a_long_second_part_does_not_refuse_the_first(tmp_path: Path, embedder: Embedder) -> None:
    """By the hand threshold alone, the second part's words dilute the whole question below it;
    the first part, which the documents answer, still gets its answer."""
    _, settings, _ = small_index(tmp_path, embedder, {"water.txt": WATER})
    pipe = Pipeline(settings.model_copy(update={"refusal": "rules"}), embedder)
    try:
        a = pipe.ask(
            "水费逾期多少天会中止供水？另外请问咱们县城区自来水管网改造工程招投标流程中标单位资质审查"
            "施工监理验收保修环节分别由哪些部门具体负责把关？"
        )
        assert not a.abstained and "三十日" in a.answer, a.answer
    finally:
        pipe.index.close()
