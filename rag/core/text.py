"""The one text normaliser and the one sentence splitter, used by chunking, answering,
grounding and the UI; and the one place-name stem (金山区 → 金山) used by scope and follow-ups."""

from __future__ import annotations

import re
import unicodedata

CJK = re.compile(r"[\u3400-\u9fff]")
SENTENCE_END = "。！？；!?;"
CLOSERS = "”’」』）)】》\"'"  # closing quotes and brackets stay with the sentence they end
# [1], [1][2], [1, 2], [1、2], full-width ［１］ too: a citation marker after 。 belongs to that sentence.
MARKER = re.compile(r"[\[［]\s*([0-9０-９]{1,3}(?:\s*[,，、]\s*[0-9０-９]{1,3})*)\s*[\]］]")
_SENTENCE = re.compile(rf"[^{SENTENCE_END}\n]*(?:[{SENTENCE_END}]+[{CLOSERS}]*(?:\s*{MARKER.pattern})*|\n|$)")
PLACE_SUFFIXES = ("新区", "区", "县", "市")


def normalise(text: str, *, keep_space: bool = False, fold_case: bool = True) -> str:
    """NFKC with whitespace removed and Latin lower-cased: the form in which questions, passages,
    gold keys and LLM claims are compared (PDF text writes "2022 年底前", full-width ，（）)."""
    t = unicodedata.normalize("NFKC", text)
    t = t if keep_space else re.sub(r"\s+", "", t)  # after NFKC, which can make spaces (¨ → " ̈")
    t = t.lower() if fold_case else t
    # Dropping that space can leave a pair NFKC composes ("U¯" → "u" + U+0304 → "ū"): once more,
    # so that normalising twice gives the same text.
    return t if unicodedata.is_normalized("NFKC", t) else unicodedata.normalize("NFKC", t)


def split_sentences(text: str, *, drop_blank: bool = False) -> list[str]:
    """Sentences ending at 。！？； or a line break, with their closing quotes and citation
    markers. The pieces concatenate back to `text` unless `drop_blank` leaves out the
    whitespace-only ones."""
    pieces = (m.group() for m in _SENTENCE.finditer(text))
    return [s for s in pieces if (s.strip() if drop_blank else s)]


def place_stem(name: str) -> str:
    """金山区 → 金山, 浦东新区 → 浦东: the name without its administrative suffix (kept when the
    rest would be a single character, as in 东区)."""
    for s in PLACE_SUFFIXES:
        if name.endswith(s) and len(name) - len(s) >= 2:
            return name[: -len(s)]
    return name


def longest_first(s: str) -> tuple[int, str]:
    """Sort key for names matched longest first (浦东新区 before 浦东); equal lengths in a fixed
    order, since a set's order changes from run to run and with it which overlapping name wins."""
    return -len(s), s
