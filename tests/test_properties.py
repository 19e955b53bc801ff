"""Property tests (hypothesis) for the text path: the normalisers, the chunker, the follow-up
rewrite, the claim splitter and the question analysis never crash on random Unicode, huge lines,
no or only punctuation, mixed scripts and control characters; chunking loses no content."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.core.text import longest_first, normalise, split_sentences
from rag.core.types import Document, content_hash
from rag.ingest.chunk import INFO_SECTION, chunk_document, pack_paragraphs, parse_sections
from rag.ingest.paragraphs import normalize_text
from rag.llm.grounding import split_claims
from rag.query.followup import MAX_QUESTION_CHARS, MAX_TURNS, rewrite, too_long
from rag.query.question import INTENTS, analyse
from rag.query.terms import query_terms, question_words

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PUNCT = "。，、；：？！“”‘’（）《》【】…—·.,;:?!()[]\"'-#*_`>|~"
HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
pieces = st.one_of(
    st.text(max_size=60),  # any Unicode, control characters and surrogates' neighbours included
    st.text(alphabet=HAN, min_size=1, max_size=80),
    st.text(alphabet=PUNCT, min_size=1, max_size=20),
    st.text(alphabet="\n\r\t \u3000\x0b\x0c\x85\u2028", min_size=1, max_size=5),
    st.sampled_from(
        ["一、总体要求", "（一）主要任务", "1. 推进", "第三条", "# 标题", "金山区", "静安区", "2025年底前"]
    ),
    st.text(alphabet=HAN, min_size=1000, max_size=2000),  # a huge line without punctuation
)
texts = st.lists(pieces, max_size=8).map("".join)
questions = texts.map(lambda s: s[:MAX_QUESTION_CHARS])  # the API and the CLI refuse longer ones
WS = re.compile(r"\s+")


def _strip_ws(s: str) -> str:
    return WS.sub("", s)


@FAST
@given(texts)
def test_normalisers_never_crash_and_are_stable(raw: str) -> None:
    once = normalise(raw)
    assert normalise(once) == once and not WS.search(once)
    text = normalize_text(raw)
    assert "\r" not in text and "\n\n" not in text
    assert "".join(split_sentences(text)) == text


@FAST
@given(texts, st.integers(min_value=20, max_value=600))
def test_chunking_loses_no_content(raw: str, max_chars: int) -> None:
    text = normalize_text(raw)
    doc = Document(id=content_hash(text), source="x.txt", title="标题", text=text)
    chunks = [c for c in chunk_document(doc, max_chars) if c.section_path != (INFO_SECTION,)]
    content = "".join(p for _, p in parse_sections(text))  # headings live in the section paths
    assert _strip_ws("".join(c.text for c in chunks)) == _strip_ws(content)
    assert all(c.text.strip() for c in chunks)


@FAST
@given(st.lists(texts.filter(str.strip), max_size=8), st.integers(min_value=10, max_value=500))
def test_packing_paragraphs_keeps_every_character(paragraphs: list[str], max_chars: int) -> None:
    packed = pack_paragraphs(paragraphs, max_chars)
    assert _strip_ws("".join(packed)) == _strip_ws("".join(paragraphs))


@FAST
# Turns of any length: jieba.posseg's HMM (~50 ms per unknown character) only ever sees short remainders.
@given(texts, st.lists(st.one_of(texts, st.fixed_dictionaries({"question": texts})), max_size=4))
def test_followup_rewrite_never_crashes(question: str, history: list[str | dict[str, str]]) -> None:
    standalone, district = rewrite(question, history, ["金山区", "静安区"])
    assert isinstance(standalone, str) and district in (None, "金山区", "静安区")


@FAST
@given(st.text(alphabet=HAN, min_size=1, max_size=6), st.sampled_from(["呢", "呢？", "那{}呢"]))
def test_short_unknown_follow_ups_never_crash(word: str, form: str) -> None:
    q = form.format(word) if "{}" in form else word + form
    standalone, district = rewrite(q, ["金山区的考核要求是什么？"] * 3, ["金山区", "静安区"])
    assert isinstance(standalone, str) and district in (None, "金山区", "静安区")


def test_question_cap_at_the_door() -> None:
    assert too_long("问" * MAX_QUESTION_CHARS) is None
    assert too_long("  " + "问" * MAX_QUESTION_CHARS + "\n") is None  # surrounding blanks do not count
    message = too_long("问" * (MAX_QUESTION_CHARS + 1))
    assert message is not None and "问题过长" in message and "question too long" in message
    assert f"{MAX_QUESTION_CHARS + 1}" in message


def test_api_and_cli_refuse_a_too_long_question(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from rag.cli import main
    from rag.serve.api import ApiError, check_question

    with pytest.raises(ApiError) as e:
        check_question("问" * (MAX_QUESTION_CHARS + 1))
    assert e.value.status == 400 and "question too long" in str(e.value)
    assert check_question(" 金山区的考核要求是什么？ ") == "金山区的考核要求是什么？"
    # Refused before any index is opened (there is none here): exit status 2, the message on stderr.
    assert main(["ask", "问" * (MAX_QUESTION_CHARS + 1), "--index", str(tmp_path / "none")]) == 2
    assert "问题过长" in capsys.readouterr().err


def test_rewrite_of_huge_input_reads_only_the_recent_turns() -> None:
    huge = "丷乓両惑" * 50_000  # 200k characters jieba does not know
    standalone, district = rewrite(huge + "呢", [huge, {"question": huge}], ["金山区", "静安区"])
    assert standalone.startswith("丷乓両惑") and district is None
    # The district named more than MAX_TURNS turns back no longer sets the scope.
    recent = ["考核要求是什么？"] * MAX_TURNS
    assert rewrite("它的目标是什么", ["金山区的主要任务是什么？", *recent], ["金山区"]) == ("它的目标是什么", None)
    assert rewrite("它的目标是什么", ["金山区的主要任务是什么？", *recent[1:]], ["金山区"])[1] == "金山区"


@FAST
@given(texts)
def test_claim_splitter_never_crashes_and_keeps_the_text(text: str) -> None:
    claims = split_claims(text)
    assert all(c.text.strip() for c in claims)
    assert _strip_ws("".join(c.text for c in claims)) == _strip_ws(text)


@FAST
@given(questions)
def test_question_analysis_never_crashes(question: str) -> None:
    words = question_words(question)
    assert all(isinstance(w, str) for w in words)
    assert all(t.strip() for t in query_terms(question))
    q = analyse(question)
    assert q.kind in {it.kind for it in INTENTS} | {"fact"} and q.words == words


@FAST
@given(st.sets(st.text(alphabet="浦东新区金山黄静安", min_size=1, max_size=4), max_size=8))
def test_names_sort_longest_first_in_one_order_whatever_the_set_order(names: set[str]) -> None:
    """Place names are matched longest first; equal lengths must not follow a set's order, which
    changes from run to run (and with it which of two overlapping names wins)."""
    forward = sorted(names, key=longest_first)
    backward = sorted(reversed(list(names)), key=longest_first)
    assert forward == backward
    assert [len(n) for n in forward] == sorted((len(n) for n in names), reverse=True)
