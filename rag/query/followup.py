"""Rule-based follow-up rewriting: a conversation keeps its district scope, no LLM involved.

After "金山区的行政复议体制改革什么时候完成？":
    "那静安区呢？"          → "静安区的行政复议体制改革什么时候完成？", 静安区   (switch district)
    "它的考核要求是什么"    → "金山区的考核要求是什么", 金山区                (stay in scope)
    "那浦东新区呢？"        → "浦东新区的行政复议体制改革什么时候完成？", None  (the pipeline refuses)

History turns are plain previous user questions, or dicts with "question" (or "content") and,
when the caller already resolved them, "rewritten" and "district".

Safe on long and hostile input: a question is capped at MAX_QUESTION_CHARS at the door
(`too_long`, used by the API and the CLI), and `rewrite` itself reads only the last MAX_TURNS
turns, each cut to MAX_QUESTION_CHARS. jieba.posseg's HMM costs ~50 ms per character it does not
know (10 s for 200 random Hanzi), so it only ever sees a remainder of at most _SWITCH_MAX_CHARS,
only for the question and the turn before it, and each word once (cached); older turns use the
dictionary alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rag.core.text import longest_first, place_stem
from rag.query.scope import detect_scope

# Words that carry no content in an elliptical follow-up such as "那么静安区的情况呢？".
_FILLER = re.compile(
    r"那么|那|请问|和|与|及|跟|同样|一样|对于|关于|换成|改成|如果是|如果|情况|方面|怎么样|怎样|如何|又|也|还|呢|吗|的|是|"
    r"[\s，,。.？?！!、：:；;“”\"'（）()]"
)
# A leading pronoun that points back to the conversation's district or plan.
_PRONOUN = re.compile(
    r"^(?:那么|那)?(?:它们的|它的|该区的|这个区的|该规划的|这个规划的|该文件的|本规划的|该区|这个区|该规划|这个规划|其|它)"
)
_LEADING_THAT = re.compile(r"^(?:那么|那)")
_SWITCH_MAX_CHARS = 6  # "徐汇呢"-style unknown names are short; longer remainders are real questions
MAX_QUESTION_CHARS = 500  # the longest question the API and the CLI accept
MAX_TURNS = 20  # history turns a rewrite reads (the scope comes from the recent ones)


def too_long(question: str) -> str | None:
    """The bilingual refusal for a question over MAX_QUESTION_CHARS (after stripping), or None."""
    n = len(question.strip())
    if n <= MAX_QUESTION_CHARS:
        return None
    return (
        f"问题过长：最多 {MAX_QUESTION_CHARS} 字，现有 {n} 字，请精简后再问 "
        f"(question too long: at most {MAX_QUESTION_CHARS} characters, got {n})"
    )


@dataclass(frozen=True)
class Turn:
    question: str  # the standalone form
    districts: tuple[str, ...]  # the scope it was answered in (known or unknown names)


def _strip_names(text: str, names: Sequence[str]) -> str:
    for n in sorted(names, key=longest_first):
        text = text.replace(n, "")
        if place_stem(n) != n:
            text = text.replace(place_stem(n), "")
    return text


def _substitute(question: str, old: Sequence[str], new: str) -> str:
    """The previous question with its district(s) replaced by `new` (prefixed when it named none)."""
    for n in sorted(old, key=longest_first):
        for form in (n, place_stem(n)):
            if form and form in question:
                return question.replace(form, new, 1)
    return f"{new}的{question}" if question else new


def _as_turn(item: str | Mapping[str, Any]) -> tuple[str, str | None, str | None]:
    """(raw question, rewritten question or None, resolved district or None) from a history item."""
    if isinstance(item, str):
        return item, None, None
    raw = str(item.get("question") or item.get("content") or "")
    rewritten = item.get("rewritten") or item.get("rewritten_question")
    district = item.get("district")
    return raw, (str(rewritten) if rewritten else None), (str(district) if district else None)


def _step(question: str, prev: Turn | None, districts: Sequence[str], default: str | None, guess: bool = True) -> Turn:
    q = question.strip()
    scope = detect_scope(q, list(districts))
    named = scope.districts + scope.unknown
    rest = _FILLER.sub("", _strip_names(q, named))
    if named:
        if prev is not None and not rest:  # "那静安区呢？": the previous question, other district
            return Turn(_substitute(prev.question, prev.districts, "和".join(named)), named)
        return Turn(q, named)
    if (
        prev is not None
        and q.rstrip("？?").endswith("呢")
        and 0 < len(rest) <= _SWITCH_MAX_CHARS
        and _looks_like_place(rest, guess)
    ):
        # "徐汇呢": a short place name without 区 that scope detection cannot place; swap it in
        # and let the pipeline judge the scope.
        return Turn(_substitute(prev.question, prev.districts, rest), (rest,))
    inherited = (default,) if default else (prev.districts if prev is not None else ())
    if not inherited:
        return Turn(q, ())
    label = "和".join(inherited)
    m = _PRONOUN.match(q)
    if m:
        glue = "的" if m.group(0).endswith("的") or m.group(0) == "其" else ""
        return Turn(label + glue + q[m.end() :], inherited)
    return Turn(label + _LEADING_THAT.sub("", q), inherited)


_PLACE_FLAGS = ("ns", "nr", "nz", "nrt")


@lru_cache(maxsize=4096)
def _looks_like_place(word: str, guess: bool = True) -> bool:
    """A bare short noun that jieba tags as a place name (e.g. 徐汇, 浦东). The dictionary first;
    only with `guess` does the HMM guess at a word the dictionary lacks (闵行)."""
    import jieba.posseg as pseg

    if len(word) > _SWITCH_MAX_CHARS:
        return False
    tags = pseg.lcut(word, HMM=False)
    if len(tags) == 1:
        return tags[0].flag in _PLACE_FLAGS
    if not guess:
        return False
    tags = pseg.lcut(word)
    return len(tags) == 1 and tags[0].flag in _PLACE_FLAGS


def rewrite(
    question: str,
    history: Sequence[str | Mapping[str, Any]],
    districts: Sequence[str],
    default: str | None = None,
) -> tuple[str, str | None]:
    """The standalone question and the district to restrict retrieval to (None: no restriction).

    `districts` are those the index holds. `default` is a scope the user picked explicitly (the UI's
    selector); it beats the conversation's scope but not a district named in the question itself.
    """
    turns = [
        (raw[:MAX_QUESTION_CHARS], rewritten[:MAX_QUESTION_CHARS] if rewritten else None, district)
        for item in history
        if isinstance(item, str) or item.get("role", "user") == "user"  # chat-style: only the user's turns
        for raw, rewritten, district in [_as_turn(item)]
        if raw.strip() or rewritten
    ][-MAX_TURNS:]
    prev: Turn | None = None
    for i, (raw, rewritten, district) in enumerate(turns):
        if rewritten and district:  # resolved by the caller already
            prev = Turn(rewritten, (district,))
            continue
        turn = _step(raw, prev, districts, None, guess=i == len(turns) - 1)
        if rewritten:
            turn = Turn(rewritten, turn.districts)
        if district:
            turn = Turn(turn.question, (district,))
        prev = turn
    turn = _step(question, prev, districts, default if default in districts else None)
    known = [d for d in turn.districts if d in districts]
    district = known[0] if len(known) == 1 and len(turn.districts) == 1 else None
    return turn.question, district
