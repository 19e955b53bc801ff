"""Repeated questions come from the per-generation answer cache, and never outlive a re-index."""

from __future__ import annotations

from pathlib import Path

from rag.answer.cache import AnswerCache
from rag.answer.pipeline import Pipeline
from rag.core.settings import Settings
from rag.core.types import Answer
from rag.index.embed import Embedder
from rag.ingest.build import ingest


def _answer(text: str) -> Answer:
    return Answer("问", text, False, (), (), {"total": 5.0})


def test_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache = AnswerCache(2)
    calls: list[str] = []

    def make(text: str) -> Answer:
        calls.append(text)
        return _answer(text)

    cache.get_or_compute(("a", None), lambda: make("a"))
    cache.get_or_compute(("b", None), lambda: make("b"))
    assert cache.get_or_compute(("a", None), lambda: make("a!")).answer == "a"  # hit: a is now newest
    cache.get_or_compute(("c", None), lambda: make("c"))  # evicts b
    assert len(cache) == 2
    assert cache.get_or_compute(("b", None), lambda: make("b2")).answer == "b2"
    assert calls == ["a", "b", "c", "b2"]
    # The district asked for is part of the key.
    assert cache.get_or_compute(("a", "静安区"), lambda: make("a-静安")).answer == "a-静安"


def test_size_zero_turns_it_off() -> None:
    cache = AnswerCache(0)
    assert cache.get_or_compute(("a", None), lambda: _answer("1")).answer == "1"
    assert cache.get_or_compute(("a", None), lambda: _answer("2")).answer == "2"
    assert len(cache) == 0


def test_a_repeated_question_gets_the_same_answer_marked_cached(pipeline: Pipeline) -> None:
    q = "静安区在推进公共法律服务方面有哪些安排？"  # not in the eval sets
    first = pipeline.ask(q)
    again = pipeline.ask(q)
    assert "cached" not in first.extra
    assert again.extra.get("cached") is True
    assert (again.answer, again.abstained, again.citations) == (first.answer, first.abstained, first.citations)
    assert again.timings_ms["total"] == 0.0


def test_a_reindex_drops_cached_answers(tmp_path: Path, embedder: Embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    law = docs / "a.txt"
    law.write_text("上海市甲区养犬管理规定\n第一条 犬只登记由区公安分局负责办理。\n", "utf-8")
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    assert ingest([docs], settings, embedder).ok
    pipe = Pipeline(settings, embedder)
    q = "甲区犬只登记由哪个部门办理？"
    assert "公安分局" in pipe.ask(q).answer
    assert pipe.ask(q).extra.get("cached") is True
    law.write_text("上海市甲区养犬管理规定\n第一条 犬只登记由区农业农村委负责办理。\n", "utf-8")
    assert ingest([docs], settings, embedder).ok
    assert pipe.reload_if_changed()
    fresh = pipe.ask(q)
    assert "cached" not in fresh.extra
    assert "农业农村委" in fresh.answer
