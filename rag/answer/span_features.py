"""Candidate answer spans inside one sentence, and the features the span model scores them by.

Shared by serving (rag/answer/span.py) and training (eval/train_span.py), so the two can never
drift apart. A candidate is a run of whole jieba words that does not cross 。；; its features say
what it is (a date, a figure, a person, place or office, items joined by 、), how long it is, and
how it sits against the question: a span that repeats the question's words is rarely its answer,
one framed by them (the words before and after the question's 什么/哪/谁 in the question) usually is.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np

from rag.core.text import normalise
from rag.query.question import FUNCTION_WORDS as _FUNCTION
from rag.query.question import INTENTS, Question
from rag.query.question import PUNCT_WORD as _PUNCT

MAX_CHARS = 40  # CMRC 2018 dev: 90 % of gold answers have at most 24 characters
_BREAK = re.compile(r"[。；;！？!?\n]")
_DATE = re.compile(
    r"(?:\d{2,4}|[〇零一二三四五六七八九十]{2,4})年|\d{1,2}月|[一二三四五六七八九十]{1,3}月|\d{1,2}日|世纪|年代|朝|时期"
)
_NUM = re.compile(r"\d|[一二两三四五六七八九十百千万亿]{1,6}(?:[个名位人次种项条年岁米元倍%])|百分之")
_ORG = re.compile(r"(?:公司|集团|大学|学院|学校|政府|委员会|局|部|厅|院|协会|组织|银行|中心|办公室|队|军|党|社|馆|所)$")
# Words that introduce an answer ("是由光荣开发", "于1903年", "称为锣鼓点"): the span starts after them.
_INTRO = frozenset("是 为 于 由 是由 在 称为 称 叫 叫做 名为 即 达 约 有 共 位于 至 到 被 成为 包括 以 为了".split())
_OPEN, _CLOSE = "《「“（(『【", "》」”）)』】"
_UNIT = re.compile(
    r"^(?:公里|千米|米|厘米|平方公里|平方米|公顷|亿元|万元|元|美元|年|个|人|名|位|次|岁|吨|万|亿|%|倍|层|座|项|种|部|集|场|届|分钟|小时|天|日|月)"
)
_QUOTED = re.compile(r"^[《“\"「『].*[》”\"」』]$")
_INTENT_NAMES = tuple(dict.fromkeys([*(it.name for it in INTENTS), "fact"]))
_LEN_BINS = (1, 2, 4, 8, 16, 32)
# POS tags (jieba.posseg) that mark names, places, organisations, times and numbers.
_TAGS = ("nr", "ns", "nt", "nz", "t", "m", "eng", "n", "v", "a")


TYPE_NAMES = (
    "date",
    "number",
    "org",
    "enum",
    "quoted",
    *(f"pos_{t}" for t in _TAGS[:7]),
    "ends_noun",
    "ends_verb",
    "ends_adj",
)
GENERIC_NAMES = (
    "bias",
    *(f"len_le_{b}" for b in _LEN_BINS),
    "log_len",
    "words",
    "q_char_overlap",
    "q_word_overlap",
    "any_q_word",
    "left_in_q",
    "right_in_q",
    "near_q_left",
    "near_q_right",
    "dist_q",
    "align_left",
    "align_right",
    "after_break",
    "before_break",
    "first_function",
    "last_function",
    "last_de",
    "commas",
    "rel_pos",
    "whole_sentence",
    "prev_intro",
    "first_intro",
    "next_unit",
    "last_number",
    "unbalanced",
    "next_de",
    "prev_de",
    "prev_adjacent_frame",
    "prev_is_head",
    "ends_with_head",
    "ends_as_head",
    "unit_in_span",
    "unit_next",
    "q_left4",
    "q_right4",
    "prev_q_verb",
)
FEATURES = (
    *GENERIC_NAMES,
    *(f"{i}*{t}" for i in _INTENT_NAMES for t in TYPE_NAMES),
    *(f"{i}*len_le_{b}" for i in _INTENT_NAMES for b in _LEN_BINS),
)


_GROUPED = re.compile(r"(?<!\d)\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?")  # 1,750 and 12,000.5: jieba cuts them at the comma


@functools.lru_cache(maxsize=256)
def _tagged(sentence: str) -> tuple[tuple[str, str], ...]:
    import jieba.posseg

    out: list[tuple[str, str]] = []
    at = 0
    for m in _GROUPED.finditer(sentence):
        out += [(p.word, p.flag) for p in jieba.posseg.cut(sentence[at : m.start()])]
        out.append((m.group(), "m"))
        at = m.end()
    out += [(p.word, p.flag) for p in jieba.posseg.cut(sentence[at:])]
    return tuple(out)


def candidates(sentence: str) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Every run of whole words up to MAX_CHARS that starts and ends on a word (not punctuation)
    and crosses no sentence break, as word ranges [I, J); and the tagged words."""
    tagged = list(_tagged(sentence))
    offsets = np.cumsum([0, *(len(w) for w, _ in tagged)])
    skip = [bool(_PUNCT.match(w)) or w.isspace() for w, _ in tagged]
    starts: list[int] = []
    ends: list[int] = []
    for i in range(len(tagged)):
        if skip[i]:
            continue
        for j in range(i + 1, len(tagged) + 1):
            if _BREAK.search(tagged[j - 1][0]) or offsets[j] - offsets[i] > MAX_CHARS:
                break
            if not skip[j - 1]:
                starts.append(i)
                ends.append(j)
    return np.asarray(starts, dtype=int), np.asarray(ends, dtype=int), tagged


def _cum(flags: Any) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(flags, dtype=np.float32))])


def _contains(pattern: re.Pattern[str], sentence: str, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Whether each character range [s, e) holds a whole match of `pattern`."""
    out = np.zeros(len(s), dtype=bool)
    for m in pattern.finditer(sentence):
        out |= (s <= m.start()) & (m.end() <= e)
    return out


def features(q: Question, sentence: str) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The candidates of `sentence` as character ranges, and their feature matrix (columns in
    FEATURES order). Vectorised over candidates: a sentence has a few hundred."""
    ws, we, tagged = candidates(sentence)
    if not len(ws):
        return [], np.zeros((0, len(FEATURES)), dtype=np.float32)
    words = [w for w, _ in tagged]
    tags = [t for _, t in tagged]
    n = len(words)
    offsets = np.cumsum([0, *(len(w) for w in words)])
    cs, ce = offsets[ws], offsets[we]
    qchars = set(q.normalised)
    qwords = {w for w in q.words if len(w) >= 2 or not _PUNCT.match(w)} - _FUNCTION
    left_w, right_w = q.frame
    head = right_w or ""
    unit = q.measure or ""

    def at(flags: list[bool], k: np.ndarray, valid: np.ndarray) -> np.ndarray:
        arr = np.asarray([*flags, False])
        return np.where(valid, arr[np.clip(k, 0, n)], False)

    punct = [bool(_PUNCT.match(w)) or w.isspace() for w in words]
    in_q = [w in qwords for w in words]
    eq_left = [w == left_w for w in words]
    eq_right = [w == right_w for w in words]
    c_q, c_word, c_left, c_right = _cum(in_q), _cum([not p for p in punct]), _cum(eq_left), _cum(eq_right)
    length = (ce - cs).astype(np.float32)
    n_words = c_word[we] - c_word[ws]
    chars_in_q = _cum([normalise(ch) in qchars for ch in sentence])
    c_comma, c_enum = _cum([ch in ",，" for ch in sentence]), _cum([ch == "、" for ch in sentence])
    c_open, c_close = _cum([ch in _OPEN for ch in sentence]), _cum([ch in _CLOSE for ch in sentence])
    # The nearest question word outside the candidate, on either side.
    q_at = np.flatnonzero(in_q)
    if len(q_at):
        left_k = np.searchsorted(q_at, ws, side="left") - 1
        right_k = np.searchsorted(q_at, we, side="left")
        d_left = np.where(left_k >= 0, ws - q_at[np.clip(left_k, 0, len(q_at) - 1)], n)
        d_right = np.where(right_k < len(q_at), q_at[np.clip(right_k, 0, len(q_at) - 1)] - (we - 1), n)
        dist = np.minimum(d_left, d_right)
    else:
        dist = np.full(len(ws), n)
    has_prev, has_next = ws > 0, n > we
    prev, last, nxt = ws - 1, we - 1, we
    ones = np.ones(len(ws), dtype=bool)
    generic = [
        np.ones(len(ws)),
        *(length <= b for b in _LEN_BINS),
        np.log(np.maximum(length, 1)),
        n_words,
        (chars_in_q[ce] - chars_in_q[cs]) / np.maximum(length, 1),
        (c_q[we] - c_q[ws]) / np.maximum(n_words, 1),
        c_q[we] - c_q[ws] > 0,
        at(in_q, prev, has_prev),
        at(in_q, nxt, has_next),
        c_q[ws] - c_q[np.maximum(ws - 3, 0)] > 0,
        c_q[np.minimum(we + 3, n)] - c_q[we] > 0,
        np.log1p(dist),
        (c_left[ws] - c_left[np.maximum(ws - 2, 0)] > 0) & (left_w is not None),
        (c_right[np.minimum(we + 2, n)] - c_right[we] > 0) & (right_w is not None),
        ~has_prev | at(punct, prev, has_prev),
        ~has_next | at(punct, nxt, has_next),
        at([w in _FUNCTION for w in words], ws, ones),
        at([w in _FUNCTION for w in words], last, ones),
        at([w == "的" for w in words], last, ones),
        c_comma[ce] - c_comma[cs],
        ws / max(n, 1),
        (ws == 0) & (we >= n - 1),
        at([w in _INTRO for w in words], prev, has_prev),
        at([w in _INTRO for w in words], ws, ones),
        at([bool(_UNIT.match(w)) for w in words], nxt, has_next),
        at([t == "m" for t in tags], last, ones),
        (c_open[ce] - c_open[cs]) != (c_close[ce] - c_close[cs]),
        at([w == "的" for w in words], nxt, has_next),
        at([w == "的" for w in words], prev, has_prev),
        at(eq_left, prev, has_prev) & (left_w is not None),
        # The noun the question's 什么/哪个 asks about: "什么连续剧" → "连续剧《豪门本色》",
        # "哪个水库" → "阿尔坎塔拉水库", "哪个比赛" → "巴西大奖赛".
        at(eq_right, prev, has_prev) & (right_w is not None),
        np.asarray([sentence[a:b].endswith(head) and b - a > len(head) for a, b in zip(cs, ce, strict=True)])
        if head
        else ~ones,
        np.asarray([sentence[b - 1] == head[-1] for b in ce]) if head else ~ones,
        # The measure the question asks in ("多少米"): the figure carries it, inside or right after.
        np.asarray([unit in sentence[max(a, b - 3) : b] for a, b in zip(cs, ce, strict=True)]) if unit else ~ones,
        at([w.startswith(unit) for w in words], nxt, has_next) if unit else ~ones,
        c_q[ws] - c_q[np.maximum(ws - 4, 0)],
        c_q[np.minimum(we + 4, n)] - c_q[we],
        at([q_w and t.startswith("v") for q_w, t in zip(in_q, tags, strict=True)], prev, has_prev),
    ]
    org_end = np.asarray([bool(_ORG.search(sentence[max(0, k - 4) : k])) for k in range(len(sentence) + 1)])
    types = [
        _contains(_DATE, sentence, cs, ce),
        _contains(_NUM, sentence, cs, ce),
        org_end[ce],
        c_enum[ce] - c_enum[cs] > 0,
        np.asarray([sentence[a] in _OPEN and sentence[b - 1] in _CLOSE for a, b in zip(cs, ce, strict=True)]),
        *((lambda c: c[we] - c[ws] > 0)(_cum([t.startswith(tag) for t in tags])) for tag in _TAGS[:7]),
        at([t.startswith("n") for t in tags], last, ones),
        at([t.startswith("v") for t in tags], last, ones),
        at([t.startswith("a") for t in tags], last, ones),
    ]
    intent = _INTENT_NAMES.index(q.intent) if q.intent in _INTENT_NAMES else len(_INTENT_NAMES) - 1
    n_types, n_bins, n_generic = len(TYPE_NAMES), len(_LEN_BINS), len(GENERIC_NAMES)
    x = np.zeros((len(ws), len(FEATURES)), dtype=np.float32)
    x[:, :n_generic] = np.column_stack(generic)
    t0 = n_generic + intent * n_types
    x[:, t0 : t0 + n_types] = np.column_stack(types)
    b0 = n_generic + len(_INTENT_NAMES) * n_types + intent * n_bins
    x[:, b0 : b0 + n_bins] = np.column_stack([length <= b for b in _LEN_BINS])
    return list(zip(cs.tolist(), ce.tolist(), strict=True)), x
