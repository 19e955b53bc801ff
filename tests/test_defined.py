"""What a document means by a term (rag/answer/defined.py): its own 所称X，是指… article answers,
however deep in the document it sits. Real index of a regulation written for these tests."""

from __future__ import annotations

import pytest
from conftest import index_of

from rag.answer.cite import answer_dict
from rag.answer.defined import defining_hits
from rag.answer.pipeline import Pipeline
from rag.index.embed import Embedder
from rag.query.question import analyse

DUTIES = ["编制保护规划", "开展资源调查", "组织巡查", "设立保护标志", "开展宣传教育", "建立监测制度", "组织生态修复"]
DEFINITION = "本条例所称湿地，是指常年或者季节性积水地带、水域和低潮时水深不超过六米的海域"
PARTS = "本条例所称湿地保护设施包括：（一）界碑、界桩；（二）监测站点；（三）宣传牌"


def regulation() -> str:
    lines = ["# 澄江市湿地保护条例", ""]
    articles = [
        f"澄江市湿地保护主管部门应当{duty}，{part}的湿地保护工作依照澄江市湿地保护条例执行。"
        for duty in DUTIES
        for part in ("东岸片区", "西岸片区", "北湖片区")
    ]
    articles.insert(15, DEFINITION + "。")
    articles.insert(18, PARTS + "。")
    lines += [f"第{i}条 {text}" for i, text in enumerate(articles, start=1)]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def wetland(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Pipeline:
    return Pipeline(index_of(tmp_path_factory, embedder, {"澄江市湿地保护条例.md": regulation()}, "wetland"), embedder)


def test_the_definition_article_answers_what_the_term_means(wetland: Pipeline) -> None:
    a = answer_dict(wetland.ask("澄江市湿地保护条例里的“湿地”是什么意思？"))
    assert not a["abstained"] and "常年或者季节性积水地带" in a["answer"]


def test_the_defining_article_answers_what_the_term_includes(wetland: Pipeline) -> None:
    a = answer_dict(wetland.ask("澄江市湿地保护条例规定的湿地保护设施包括哪些？"))
    assert not a["abstained"] and "监测站点" in a["answer"]


def test_defining_hits_adds_only_missing_defining_chunks(wetland: Pipeline) -> None:
    q, hits, _, _ = wetland.candidates("澄江市湿地保护条例里的“湿地”是什么意思？")
    without = [h for h in hits[:8] if DEFINITION[:10] not in h.chunk.text]
    added = defining_hits(q, without, wetland.by_doc)
    assert [h.chunk.text for h in added if DEFINITION[:10] in h.chunk.text]
    assert all(h.chunk.id not in {x.chunk.id for x in without} for h in added)
    assert defining_hits(analyse("澄江市湿地保护主管部门应当做什么？"), without, wetland.by_doc) == []
