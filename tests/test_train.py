"""`make train` runs: the span model trains from the bench sets and the result loads and answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rag.answer.pipeline import Pipeline
from rag.answer.select import SelectModel, context, rank
from rag.answer.span import SpanModel, learned_span
from rag.core.settings import Settings
from rag.query.question import analyse

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"


@pytest.mark.skipif(not (BENCH / "cmrc2018_trial.json").is_file(), reason="needs ../shared/bench")
def test_train_script_writes_a_model_that_loads(tmp_path: Path) -> None:
    out = tmp_path / "span_model.json"
    subprocess.run(
        [sys.executable, "eval/train_span.py", "--limit", "60", "--out", str(out), "--no-eval"],
        cwd=ROOT,
        check=True,
        timeout=600,
    )
    model = SpanModel.load(out)
    span = learned_span(analyse("广三铁路在哪一年建成？"), "广三铁路于1903年筑成，全长49公里。", model)
    assert span is None or span in "广三铁路于1903年筑成，全长49公里。"


def test_shipped_model_finds_most_asked_spans() -> None:
    """Questions written for this test (none from the training sets): the span holds the answer
    and little else for most of them. A model that took whole clauses or the subject would fail."""
    model = SpanModel.load()
    cases = [
        ("这条高速公路全长多少公里？", "该高速公路于2010年建成通车，全长128.5公里，设有服务区三处。", "128.5公里"),
        ("该馆由哪位建筑师设计？", "博物馆新馆由建筑师贝聿铭设计，于2006年落成开放。", "贝聿铭"),
        ("大桥是哪一年通车的？", "这座跨江大桥于1968年正式通车，是当时国内最长的公路铁路两用桥。", "1968年"),
        ("该市的市花是什么？", "该市气候温和，市花是桂花，市树是香樟。", "桂花"),
        ("学院位于哪个城市？", "这所学院位于杭州，由当地企业家捐资创办。", "杭州"),
        ("补贴标准是每人多少元？", "对符合条件的申请人，按照每人三千元的标准发放一次性补贴。", "三千元"),
        ("小说的作者是谁？", "这部小说的作者是老舍，首次出版于1937年。", "老舍"),
        ("湖泊的面积有多大？", "湖泊面积约为42平方公里，平均水深2.3米。", "42平方公里"),
    ]
    good = 0
    for question, sentence, gold in cases:
        span = learned_span(analyse(question), sentence, model)
        good += span is not None and gold in span and len(span) <= len(gold) + 6
    assert good >= 6, good  # the shipped model got 7 of 8 when this test was written


@pytest.mark.skipif(not (BENCH / "cmrc2018_trial.json").is_file(), reason="needs ../shared/bench")
def test_selector_script_writes_a_model_that_orders_and_decides(tmp_path: Path) -> None:
    """eval/train_select.py on a few questions of each set (BM25 only): both boosters load and
    judge a real pipeline's candidates."""
    out = tmp_path / "select_model.json"
    subprocess.run(
        [
            sys.executable,
            "eval/train_select.py",
            "--limit",
            "40",
            "--no-embed",
            "--out",
            str(out),
            "--work",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        check=True,
        timeout=900,
    )
    model = SelectModel.load(out)
    assert model.answer is not None and 0.0 < model.threshold < 1.0
    pipe = Pipeline(Settings(index_dir=tmp_path / "work" / "plans" / "index", selector="rules"))
    q, _, head, scored = pipe.candidates("金山区的行政复议体制改革要在什么时候完成？")
    ranked = rank(q, scored, head, model)
    assert sorted(map(id, ranked.scored)) == sorted(map(id, scored))
    assert model.answers(ranked, context(q, head, pipe.idf)) in (True, False)
