"""Rule-based follow-up rewriting keeps the conversation's district scope (rag/followup.py)."""

from __future__ import annotations

import pytest

from rag.query.followup import rewrite

HELD = ["金山区", "静安区"]
FIRST = "金山区的行政执法证件什么时候换发？"


def test_switch_district_asks_the_same_question_elsewhere() -> None:
    q, d = rewrite("那静安区呢？", [FIRST], HELD)
    assert d == "静安区"
    assert q == "静安区的行政执法证件什么时候换发？"


@pytest.mark.parametrize("follow", ["静安的呢", "那么静安区的情况呢？", "静安区呢"])
def test_switch_variants(follow: str) -> None:
    q, d = rewrite(follow, [FIRST], HELD)
    assert d == "静安区" and "静安区" in q and "金山" not in q and "执法证件" in q


def test_pronoun_stays_in_scope() -> None:
    q, d = rewrite("它的考核要求是什么", [FIRST], HELD)
    assert (q, d) == ("金山区的考核要求是什么", "金山区")


def test_question_without_district_inherits_scope() -> None:
    q, d = rewrite("行政复议委员会如何运行？", [FIRST], HELD)
    assert d == "金山区" and q.startswith("金山区")


def test_scope_follows_the_latest_switch() -> None:
    q, d = rewrite("它的考核要求是什么", [FIRST, "那静安区呢？"], HELD)
    assert (q, d) == ("静安区的考核要求是什么", "静安区")


def test_explicit_district_in_question_wins() -> None:
    q, d = rewrite("静安区的考核要求是什么", [FIRST], HELD)
    assert (q, d) == ("静安区的考核要求是什么", "静安区")


def test_unknown_district_is_not_answered_from_the_conversation_scope() -> None:
    q, d = rewrite("那浦东新区呢？", [FIRST], HELD)
    assert d is None
    assert q.startswith("浦东新区") and "执法证件" in q


def test_two_districts_leave_retrieval_unrestricted() -> None:
    q, d = rewrite("金山区和静安区呢", [FIRST], HELD)
    assert d is None and "金山区" in q and "静安区" in q


def test_no_history_no_change() -> None:
    assert rewrite("它的考核要求是什么", [], HELD) == ("它的考核要求是什么", None)
    assert rewrite("那静安区呢？", [], HELD) == ("那静安区呢？", "静安区")


def test_selected_scope_beats_conversation_scope() -> None:
    assert rewrite("它的考核要求是什么", [FIRST], HELD, default="静安区") == ("静安区的考核要求是什么", "静安区")
    assert rewrite("考核要求是什么", [], HELD, default="金山区") == ("金山区考核要求是什么", "金山区")


def test_resolved_turns_are_trusted() -> None:
    turn = {"question": "考核要求是什么", "rewritten": "金山区考核要求是什么", "district": "金山区"}
    assert rewrite("那静安区呢", [turn], HELD) == ("静安区考核要求是什么", "静安区")
    chat = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": "静安区……[1]"}]
    assert rewrite("那静安区呢？", chat, HELD)[1] == "静安区"
