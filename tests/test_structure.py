"""Structural answers: a list question naming a heading gets that heading's items; an
enumeration ("一是…二是…") is answered whole; a date/figure must come with the question's topic."""

from __future__ import annotations

import re

import pytest
from conftest import DOCS

from rag.answer.pipeline import Pipeline
from rag.answer.structure import heading_name


def _raw(district_file: str) -> str:
    return next(DOCS.glob(f"{district_file}*")).read_text("utf-8")


def _leads_under(text: str, heading: str, next_heading: str) -> list[str]:
    """The "——" paragraph leads between two headings of the raw file (the body, not the TOC)."""
    body = text[text.rindex(heading) : text.rindex(next_heading)]
    return re.findall(r"——[*\s]*([^。；，*]+)", re.sub(r"\s+", "", body))


def test_heading_name_strips_numbering() -> None:
    assert heading_name("（二）基本原则") == "基本原则"
    assert heading_name("四、重大项目") == "重大项目"
    assert heading_name("18. 落实行政复议体制改革") == "落实行政复议体制改革"


@pytest.mark.parametrize(("district", "file"), [("金山区", "jinshan"), ("静安区", "jingan")])
def test_principles_list_every_lead_of_the_section(pipeline: Pipeline, district: str, file: str) -> None:
    leads = _leads_under(_raw(file), "基本原则", "（三）")
    assert len(leads) >= 3
    ans = pipeline.ask(f"{district}规划的基本原则有哪些？")
    assert not ans.abstained
    for lead in leads:
        assert lead in ans.answer
    assert all(c.chunk.district == district for c in ans.citations)
    assert all("基本原则" in c.chunk.section for c in ans.citations)


def test_sub_headings_answer_which_items_a_part_has(pipeline: Pipeline) -> None:
    subs = sorted(
        {
            c.section_path[1]
            for c in pipeline.index.chunks
            if c.district == "静安区" and c.section_path[0].endswith("重大项目")
        }
    )
    assert len(subs) >= 2
    ans = pipeline.ask("静安区规划里有哪些重大项目？")
    assert not ans.abstained
    for sub in subs:
        assert sub in ans.answer


def test_enumeration_is_answered_whole(pipeline: Pipeline) -> None:
    """A sentence opening "一是…" is followed by its "二是…", "三是…" heads from the same passage."""
    ans = pipeline.ask("静安区距离政府工作法治化目标还有哪些差距？")
    assert not ans.abstained
    passage = ans.citations[0].chunk.text
    heads = re.findall(r"[一二三四五六七八九]是[^。]+。", passage)
    assert len(heads) >= 2
    for head in heads:
        assert head in ans.answer


def test_a_date_of_another_matter_is_not_an_answer(pipeline: Pipeline) -> None:
    """The plan dates 执法证件换发 but not 证明事项清理 for 金山: a date question on the latter refuses."""
    jinshan = _raw("jinshan")
    assert "证明事项清理" not in re.sub(r"\s+", "", jinshan)
    ans = pipeline.ask("金山区的证明事项清理要在什么时候完成？")
    assert ans.abstained, ans.answer


def test_lead_in_ending_a_passage_is_followed_by_its_sub_headings(pipeline: Pipeline) -> None:
    """A passage ending "…具体体现在：" is completed by the sub-items under its heading."""
    leads = [
        c
        for c in pipeline.index.chunks
        if c.text.rstrip().endswith("：")
        and any(
            len(o.section_path) > len(c.section_path) and o.section_path[: len(c.section_path)] == c.section_path
            for o in pipeline.by_doc[c.doc_id]
        )
    ]
    assert leads
    for chunk in leads:
        lead = re.split(r"(?<=[。；])", chunk.text.strip())[-1]
        ans = pipeline.ask(f"{chunk.district}{lead.rstrip('：')}哪些？")
        assert not ans.abstained, lead
        subs = {
            o.section_path[len(chunk.section_path)]
            for o in pipeline.by_doc[chunk.doc_id]
            if len(o.section_path) > len(chunk.section_path)
            and o.section_path[: len(chunk.section_path)] == chunk.section_path
        }
        for sub in subs:
            assert sub in ans.answer


@pytest.mark.parametrize(
    "question",
    [
        "金山区规划的基本原则有哪些？",
        "静安区规划里有哪些重大项目？",
        "静安区距离政府工作法治化目标还有哪些差距？",
        "金山区规划认为法治政府建设有哪些短板？",
        "静安区怎样推进政务服务“一网通办”？",
        "行政复议体制改革要在什么时候完成？",
    ],
)
def test_every_quote_is_text_of_its_passage(pipeline: Pipeline, question: str) -> None:
    """Each piece of a quote ("……" separates pieces) is in the cited passage, or is the
    sub-heading the passage sits under."""
    ans = pipeline.ask(question)
    assert ans.citations, question
    for c in ans.citations:
        for piece in c.quote.split("……"):
            assert piece in c.chunk.text or piece.rstrip("；。") in c.chunk.section_path, (piece, c.chunk.section)


@pytest.mark.parametrize(
    "question",
    ["金山区规划的保障措施里对资金有哪些要求？", "静安区发展目标中的主要指标分别是多少？"],
)
def test_a_heading_named_in_passing_is_not_a_list_question(pipeline: Pipeline, question: str) -> None:
    ans = pipeline.ask(question)
    items = [c for c in ans.citations if c.quote.rstrip("；。") in c.chunk.section_path]
    assert not items, ans.answer


def test_a_chosen_lead_in_brings_its_items_whatever_follows_it() -> None:
    """The answer "…应当履行下列义务：" is followed in the group by a weaker sentence of the same
    article; its items still follow it, in the article's order, before that sentence."""
    from rag.answer.score import Scored
    from rag.answer.structure import lead_in_items
    from rag.core.text import split_sentences
    from rag.core.types import Chunk, Hit

    text = (
        "第九条 经营者应当履行下列义务：（一）建立台账；（二）按月报送数据；（三）配合检查。"
        "经营者未按照前款第二项规定报送的，主管部门可以责令改正。"
    )
    hit = Hit(Chunk("c1", "d1", text, ("第九条",), 0), 1.0)
    sentences = split_sentences(text, drop_blank=True)
    last = len(sentences) - 1
    group = [Scored(hit, sentences[0], 0, 0.9, 0.8), Scored(hit, sentences[last], last, 0.5, 0.4)]
    out = [s.sentence for s in lead_in_items(group, {})]
    assert out[0] == sentences[0]
    assert [s for s in out if s.startswith("（")] == [s for s in sentences if s.startswith("（")]
    assert out[-1] == sentences[last]
