"""A question of two questions is answered in both parts, from the one document it asks of."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import pipeline_over

from rag.answer.pipeline import Pipeline
from rag.index.embed import Embedder
from rag.query.question import analyse


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Pipeline]:
    water = (
        "某县农村饮水工程管理办法\n"
        "第一条 为了保障农村饮水安全，制定本办法。\n"
        "第九条 供水单位因检修需要临时停止供水的，应当提前二十四小时通知用户。\n"
        "第十条 用户逾期三十日未交水费的，供水单位可以中止供水。\n"
        "第十一条 用户补交水费后，供水单位应当在十二小时内恢复供水。\n"
        "第十二条 供水单位应当每季度向社会公布水质检测结果。\n"
    )
    with pipeline_over(tmp_path_factory.mktemp("parts"), embedder, {"water.txt": water}) as p:
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
