"""Property tests (hypothesis) for the text path: the normalisers, the chunker, the follow-up
rewrite, the claim splitter and the question analysis never crash on random Unicode, huge lines,
no or only punctuation, mixed scripts and control characters; chunking loses no content."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.core.text import normalise, split_sentences
from rag.core.types import Document, content_hash
from rag.ingest.chunk import INFO_SECTION, chunk_document, pack_paragraphs, parse_sections
from rag.ingest.paragraphs import normalize_text
from rag.llm.grounding import split_claims
from rag.query.followup import rewrite
from rag.query.terms import query_terms, question_kind, question_words

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
questions = texts.map(lambda s: s[:500])  # the API refuses longer questions (MAX_QUESTION_CHARS)
short = texts.map(lambda s: s[:40])
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
# Short turns: jieba.posseg's HMM in rag.query.scope takes ~10 s on 200 random Hanzi (reported, not fixed here).
@given(short, st.lists(st.one_of(short, st.fixed_dictionaries({"question": short})), max_size=4))
def test_followup_rewrite_never_crashes(question: str, history: list[str | dict[str, str]]) -> None:
    standalone, district = rewrite(question, history, ["金山区", "静安区"])
    assert isinstance(standalone, str) and district in (None, "金山区", "静安区")


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
    assert isinstance(question_kind(question), str)
