"""answer_span: the shortest text that answers, inside the quoted sentence."""

from __future__ import annotations

import pytest

from rag.answer.cite import answer_dict
from rag.answer.pipeline import Pipeline
from rag.answer.span import rule_span
from rag.query.question import analyse


@pytest.mark.parametrize(
    ("question", "sentence", "span"),
    [
        ("本条例什么时候开始实行？", "本条例自2021年3月1日起施行。", "2021年3月1日起"),
        ("违规要罚多少钱？", "由有关部门责令改正，可处五百元以上五千元以下的罚款。", "五百元以上五千元以下"),
        ("由哪个部门统一管理？", "市生态环境局负责本市大气污染防治的统一监督管理。", "市生态环境局"),
        # A person is the span model's to find: no office pattern is tried.
        ("电影里的市长由谁饰演？", "市长一角由张三饰演，他曾在市文化局工作。", None),
        (
            "服务站有哪些？",
            "设立人民调解工作室、法律服务站和公共法律服务点。",
            "人民调解工作室、法律服务站和公共法律服务点",
        ),
        ("条例的目的是什么？", "为了保护和改善环境，制定本条例。", None),
        # The figure in the asked measure, not the first figure of the sentence.
        # An article's number (第二十八条) is not a figure of the rule it states.
        (
            "占用岸线罚多少钱？",
            "第二十八条 未取得许可证占用岸线的，处一万元以上五万元以下罚款。",
            "一万元以上五万元以下",
        ),
        (
            "本条例所称的志愿服务是指什么？",
            "本条例所称志愿服务，是指志愿者无偿提供的公益服务。",
            "志愿者无偿提供的公益服务",
        ),
        ("汛期什么时候开始、什么时候结束？", "每年5月1日至9月30日为汛期。", "5月1日至9月30日"),
        ("体育部门几天内要给答复？", "在接到申请之日起十五日内作出答复。", "十五日"),
        ("这条铁路全长多少公里？", "这是一条连接两市的铁路，全长364.6公里。", "364.6公里"),
    ],
)
def test_pattern_span_by_question_kind(question: str, sentence: str, span: str | None) -> None:
    assert rule_span(analyse(question), sentence) == span


def test_span_is_in_the_json_contract(pipeline: Pipeline) -> None:
    d = answer_dict(pipeline.ask_extractive("静安区要求行政执法人员每年接受的专题培训不少于多少学时？"))
    assert d["answer_span"] and d["answer_span"] in d["answer"] and len(d["answer_span"]) < len(d["answer"])
    refused = answer_dict(pipeline.ask_extractive("静安区的区长叫什么名字？"))
    assert refused["abstained"] and refused["answer_span"] is None


def test_a_grouped_number_is_one_candidate_word() -> None:
    """jieba cuts "1,750" at its comma; the span candidates keep it whole (and leave "2019,2020" as
    two years)."""
    from rag.answer.span_features import candidates

    *_, tagged = candidates("生长于海拔1,750米的地区，见于2019,2020年")
    words = [w for w, _ in tagged]
    assert "1,750" in words
    assert "2019" in words and "2020" in words


def test_an_answer_from_several_places_has_its_best_place_s_span(pipeline: Pipeline) -> None:
    """Unscoped, each district answers on its own line; the span is the first (best) one's."""
    d = answer_dict(pipeline.ask_extractive("行政复议改革要在哪一年前完成？"))
    lines = d["answer"].split("\n")
    assert len(lines) > 1, d["answer"]
    assert d["answer_span"] and d["answer_span"] in lines[0], d
