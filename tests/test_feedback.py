"""👍 / 👎 feedback in SQLite and its export as eval-set lines (rag/feedback.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from rag.core.errors import InputError
from rag.serve.feedback import FeedbackStore

CITES = [
    {"n": 1, "source": "jinshan.txt", "quote": "2022年年底前全面实行“一网通办”。", "district": "金山区"},
    {"n": 2, "source": "jinshan.txt", "quote": "拓展自助终端进社区。", "district": "金山区"},
]


@pytest.fixture
def store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore(tmp_path / "data" / "feedback.sqlite")


def test_add_and_read_back(store: FeedbackStore) -> None:
    fid = store.add("一网通办何时全面实行？", "2022年年底前…[1]", CITES, "up", " 准确 ", district="金山区")
    rows = store.all()
    assert [r["id"] for r in rows] == [fid]
    r = rows[0]
    assert r["rating"] == "up" and r["comment"] == "准确" and r["district"] == "金山区"
    assert r["citations"] == CITES and r["abstained"] is False and r["created_at"]
    # Stored in a real SQLite file where an operator can query it.
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT question FROM feedback").fetchone() == ("一网通办何时全面实行？",)


def test_ratings_are_normalised_and_validated(store: FeedbackStore) -> None:
    store.add("q1", "a", [], True)
    store.add("q2", "a", [], "👎")
    assert [r["rating"] for r in store.all()] == ["up", "down"]
    with pytest.raises(InputError):
        store.add("q3", "a", [], "meh")


def test_comment_can_be_added_later(store: FeedbackStore) -> None:
    fid = store.add("q", "a", [], "down")
    assert store.set_comment(fid, "应引用第三节")
    assert store.all()[0]["comment"] == "应引用第三节"
    assert not store.set_comment(fid + 100, "x")


def test_export_eval_lines(store: FeedbackStore, tmp_path: Path) -> None:
    store.add("那静安区呢？", "…[1]", CITES, "up", rewritten_question="静安区的一网通办何时实行？", district="静安区")
    store.add("浦东新区呢？", "抱歉…", [], "up", abstained=True)
    store.add("考核要求？", "…[1]", CITES, "down", "不对")
    out = tmp_path / "exports" / "fb.jsonl"
    assert store.export_jsonl(out) == 3
    lines = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    good, refusal, bad = lines
    assert good["question"] == "静安区的一网通办何时实行？" and good["asked"] == "那静安区呢？"
    assert good["gold"] == CITES[0]["quote"] and good["kind"] == "feedback" and good["keys"] == []
    assert good["district"] == "静安区" and good["sources"] == ["jinshan.txt"]
    assert refusal["kind"] == "unanswerable" and refusal["gold"] == ""
    assert bad["kind"] == "review" and bad["gold"] == "" and bad["comment"] == "不对"
    assert len({x["id"] for x in lines}) == 3
    assert store.export_jsonl(out, rating="down") == 1


def test_export_is_loadable_by_rag_eval(store: FeedbackStore, tmp_path: Path) -> None:
    from rag.evaluate import load_dataset

    store.add("q", "a[1]", CITES, "up")
    out = tmp_path / "fb.jsonl"
    store.export_jsonl(out)
    rows = load_dataset(out)
    assert rows[0]["question"] == "q" and rows[0]["gold"] == CITES[0]["quote"]
