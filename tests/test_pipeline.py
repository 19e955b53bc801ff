"""Answers end to end over the real index of both plans: scope, citations, refusal."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import small_index

from rag.answer.cite import answer_dict
from rag.answer.pipeline import Pipeline
from rag.core.errors import ScopeError
from rag.index.embed import Embedder
from rag.ingest.build import ingest


def test_answer_cites_the_item_with_its_section_path(pipeline: Pipeline) -> None:
    a = answer_dict(pipeline.ask("金山区的行政复议体制改革要在什么时候完成？"))
    assert not a["abstained"]
    assert "2022年前" in a["answer"] and "[1]" in a["answer"]
    c = a["citations"][0]
    assert c["district"] == "金山区"
    assert c["section"].startswith("三、主要任务 › （五）")
    assert c["section"].endswith("落实行政复议体制改革")
    assert c["quote"] in c["text"] and "2022年前" in c["quote"]
    assert c["source"].startswith("jinshan")


def test_same_question_other_district_uses_its_own_plan(pipeline: Pipeline) -> None:
    a = answer_dict(pipeline.ask("静安那边行政复议体制改革啥时候搞完？"))
    assert not a["abstained"]
    assert "2022年底前" in a["answer"]
    assert {c["district"] for c in a["citations"]} == {"静安区"}


def test_unscoped_question_answers_per_district(pipeline: Pipeline) -> None:
    a = answer_dict(pipeline.ask("行政复议体制改革要求在什么时候之前完成？"))
    assert not a["abstained"]
    assert {c["district"] for c in a["citations"]} == {"金山区", "静安区"}
    assert "金山区：" in a["answer"] and "静安区：" in a["answer"]


def test_unknown_district_is_refused_and_names_what_is_held(pipeline: Pipeline) -> None:
    a = answer_dict(pipeline.ask("徐汇区行政复议体制改革什么时候完成？"))
    assert a["abstained"] and not a["citations"]
    assert "徐汇区" in a["answer"] and "金山区" in a["answer"] and "静安区" in a["answer"]
    assert a["retrieved"], "nearest passages are still listed for a human"


@pytest.mark.parametrize(
    "question",
    ["明天上海会下雨吗？", "红烧肉怎么做才好吃？", "静安区“一网统管”建设的总投资是多少亿元？"],
)
def test_refuses_what_the_plans_do_not_say(pipeline: Pipeline, question: str) -> None:
    a = answer_dict(pipeline.ask(question))
    assert a["abstained"], a["answer"]
    assert a["citations"] == []


def test_json_contract(pipeline: Pipeline) -> None:
    a = answer_dict(pipeline.ask("静安区审批办结时限压减了多少？"))
    json.dumps(a, ensure_ascii=False)
    assert set(a) >= {"question", "answer", "abstained", "citations", "retrieved", "timings_ms"}
    assert set(a["timings_ms"]) == {"retrieve", "answer", "total"}
    for c in a["citations"]:
        assert set(c) == {"n", "doc_id", "source", "title", "district", "section", "text", "quote", "score"}
    assert 0 < len(a["retrieved"]) <= 10
    assert "n" not in a["retrieved"][0] and "quote" not in a["retrieved"][0]
    assert "88.75%" in a["answer"]


def test_explicit_district_outside_index_is_a_user_error(pipeline: Pipeline) -> None:
    with pytest.raises(ScopeError) as e:
        pipeline.ask("行政复议", district="浦东新区")
    assert "金山区" in str(e.value)


def test_stream_ends_with_the_answer(pipeline: Pipeline) -> None:
    parts = list(pipeline.ask_stream("静安区审批办结时限压减了多少？"))
    final = parts[-1]
    assert not isinstance(final, str)
    assert "".join(p for p in parts[:-1] if isinstance(p, str)) == final.answer


def test_reload_picks_up_a_new_generation_and_releases_old_ones(tmp_path: Path, embedder: Embedder) -> None:
    docs, settings, pipe = small_index(
        tmp_path,
        embedder,
        {"a.txt": "上海市甲区数字政府建设规划\n一、主要任务\n1. 建设政务服务平台。2023年底前完成。\n"},
    )
    assert not pipe.reload_if_changed()
    first = pipe.index
    for name in ("b", "c"):
        (docs / f"{name}.txt").write_text(f"上海市{name}区数字政府建设规划\n一、主要任务\n1. 推进一网通办。\n", "utf-8")
        assert ingest([docs], settings, embedder).ok
        assert pipe.reload_if_changed()
    assert first.client is None  # closed once a later reload retired its successor
    assert pipe.index.client is not None and len(pipe.documents()) == 3
    hits = pipe.retriever.retrieve("推进一网通办", 3)
    assert hits and "一网通办" in hits[0].chunk.text  # the new generation's Chroma and BM25 both answer


def test_a_question_naming_a_document_kind_searches_that_kind(tmp_path: Path, embedder: Embedder) -> None:
    _, _, pipe = small_index(
        tmp_path,
        embedder,
        {
            "plan.txt": "上海市甲区数据共享“十四五”规划\n一、主要任务\n1. 推进数据共享。到2023年建成数据共享平台。\n",
            "law.txt": "上海市数据共享条例\n第一章 总则\n第一条 为了促进数据共享，制定本条例。\n第二条 本市建设数据共享平台。\n",
        },
    )
    kinds = {d["source"]: d["kind"] for d in pipe.documents()}
    assert kinds == {"plan.txt": "plan", "law.txt": "regulation"}
    sources = lambda q: {h.chunk.source for h in pipe.ask(q).retrieved}  # noqa: E731
    assert sources("规划里的数据共享平台什么时候建成？") == {"plan.txt"}
    assert sources("条例对数据共享平台是怎么规定的？") == {"law.txt"}
    assert sources("数据共享平台由谁建设？") == {"plan.txt", "law.txt"}


def test_asks_during_reloads_each_see_one_whole_generation(tmp_path: Path, embedder: Embedder) -> None:
    """Help-desk traffic keeps flowing while admins ingest: no request fails or reads a closed store."""
    docs, settings, pipe = small_index(
        tmp_path,
        embedder,
        {"a.txt": "上海市甲区数字政府建设规划\n一、主要任务\n1. 推进一网通办，2023年底前完成平台建设。\n"},
    )
    errors: list[BaseException] = []
    stop = threading.Event()

    def asker() -> None:
        while not stop.is_set():
            try:
                assert pipe.ask("甲区如何推进一网通办？").retrieved
            except BaseException as e:  # noqa: BLE001 - collected and re-raised below
                errors.append(e)
                return

    threads = [threading.Thread(target=asker) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for name in ("b", "c", "d"):
            (docs / f"{name}.txt").write_text(f"上海市{name}区规划\n一、主要任务\n1. 推进一网通办。\n", "utf-8")
            assert ingest([docs], settings, embedder).ok
            assert pipe.reload_if_changed()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[0]
    assert len(pipe.documents()) == 4


def test_a_generation_still_read_is_not_cleaned_up(tmp_path: Path, embedder: Embedder) -> None:
    """A pipeline that has not reloaded through several swaps keeps its generation on disk;
    once it moves on, the next ingest removes it."""
    docs, settings, pipe = small_index(
        tmp_path, embedder, {"a.txt": "上海市甲区规划\n一、主要任务\n1. 推进一网通办。\n"}
    )
    held = pipe.index.gen
    for name in ("b", "c", "d"):
        (docs / f"{name}.txt").write_text(f"上海市{name}区规划\n一、主要任务\n1. 推进一网通办。\n", "utf-8")
        assert ingest([docs], settings, embedder).ok
    assert held.is_dir() and pipe.ask("甲区如何推进一网通办？").retrieved
    assert pipe.reload_if_changed()
    (docs / "e.txt").write_text("上海市戊区规划\n一、主要任务\n1. 推进一网通办。\n", "utf-8")
    assert ingest([docs], settings, embedder).ok
    assert not held.exists()
