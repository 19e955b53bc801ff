"""Mechanical checks of an LLM answer against the numbered passages it was given.

An answer passes only if

1. it is not empty and cites at least one passage;
2. every marker [n] names a given passage (1 ≤ n ≤ len(passages));
3. every claim sentence carries a marker. Sentences end at 。！？；!?; or a line break; markers
   right after the end mark (…完成。[1]) or alone on the next line belong to the sentence before.
   A sentence needs no marker when it has no figures and is a connective or heading (at most
   SHORT_LINE letters/digits after removing markers, list bullets and Markdown, e.g. 综上，/
   金山区：) or an introducing line ending in a colon; nor when it says 规划中未提及 (a statement
   of absence, not a claim);
4. every figure (Arabic number, year, date part, percentage, 第n; also 二〇二二年-style years)
   of a sentence appears in a passage the sentence cites, compared after NFKC and removing
   whitespace and thousands separators; in an unmarked 规划中未提及 sentence it may come from any
   passage or the question (e.g. "2030年的目标规划中未提及");
5. it does not echo an injected instruction: no 忽略以上指令 / ignore previous instructions
   style text, and no URL or e-mail address unless a cited passage that is itself free of such
   instructions contains it.

`check_answer` returns None when the answer passes, else a reason that starts with a stable
code (empty, no_citation, marker_out_of_range, unmarked_claim, ungrounded_figure, injection),
then the detail in English and Chinese.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rag.core.text import MARKER, normalise, split_sentences
from rag.query.guard import INJECTION

NOT_MENTIONED = "规划中未提及"
SHORT_LINE = 6  # letters/digits; 综上所述 / 根据规划 / 具体如下 pass, a real claim does not

_LIST_PREFIX = re.compile(r"^\s*(?:[-*•·>#]+\s*|\d{1,2}\s*(?:\.(?!\d)|[、)）])\s*|[（(]\s*\d{1,2}\s*[)）]\s*)+")
_ENUMERATOR = re.compile(r"[（(]\s*\d{1,2}\s*[)）]|[①-⑳]")
_MARKDOWN = re.compile(r"[*_`#>|]+")
_CN_DIGITS = {c: str(i) for i, c in enumerate("〇一二三四五六七八九")} | {"零": "0"}
_CN_YEAR = re.compile(r"[〇零一二三四五六七八九]{4}(?=年)")
_FIGURE = re.compile(r"(第)?(\d+(?:\.\d+)?)(%|‰)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
URL = re.compile(
    r"(?:https?://|www\.)[^\s，。；！？、）)\]】\"”]+|[\w.+-]+@[\w-]+\.[\w.-]+"
    r"|(?<![a-z0-9-])[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|cn|net|org|gov|edu|io|info|example|xyz|top)(?![a-z0-9-])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Sentence:
    text: str  # as written, markers included
    body: str  # without markers, list bullets and Markdown
    markers: tuple[int, ...]


@dataclass(frozen=True)
class Figure:
    number: str  # digits without leading zeros, e.g. "2022", "46.62"
    unit: str  # "%", "‰" or ""
    ordinal: bool  # written 第n

    def __str__(self) -> str:
        return ("第" if self.ordinal else "") + self.number + self.unit


def markers_in(text: str) -> list[int]:
    """The passage numbers cited, in order of appearance ([1, 2] counts as 1 then 2)."""
    return [int(n) for m in MARKER.finditer(text) for n in re.split(r"\s*[,，、]\s*", m.group(1).strip())]


def strip_markers(text: str) -> str:
    return MARKER.sub("", text)


def renumber(text: str, mapping: dict[int, int] | None = None) -> tuple[str, dict[int, int]]:
    """Markers rewritten as [a][b] with numbers 1..k in order of first appearance (or by the
    given mapping, extended as new numbers appear). Returns the text and old → new mapping."""
    mapping = dict(mapping or {})

    def sub(m: re.Match[str]) -> str:
        out: list[int] = []
        for n in markers_in(m.group(0)):
            new = mapping.setdefault(n, len(mapping) + 1)
            if new not in out:
                out.append(new)
        return "".join(f"[{n}]" for n in out)

    return MARKER.sub(sub, text), mapping


def _body(text: str) -> str:
    return _MARKDOWN.sub("", _LIST_PREFIX.sub("", strip_markers(text))).strip()


def split_claims(text: str) -> list[Sentence]:
    """Sentences at 。！？；!?; and line breaks, each with the markers it carries."""
    raw = [s for line in text.splitlines() for s in split_sentences(line, drop_blank=True)]
    out: list[Sentence] = []
    for s in raw:
        body, marks = _body(s), tuple(markers_in(s))
        if not re.sub(r"\W", "", body) and out:  # markers alone (e.g. on their own line)
            prev = out.pop()
            out.append(Sentence(prev.text + s, prev.body, prev.markers + marks))
        elif s.strip():
            out.append(Sentence(s.strip(), body, marks))
    return out


def _cn_year(m: re.Match[str]) -> str:
    return "".join(_CN_DIGITS[c] for c in m.group(0))


def figures(text: str) -> list[Figure]:
    """Numbers, years, dates, percentages and 第n of a text (markers and list enumerators are
    not figures)."""
    t = normalise(_ENUMERATOR.sub("", strip_markers(text)), fold_case=False)
    t = _THOUSANDS.sub("", _CN_YEAR.sub(_cn_year, t))
    out: list[Figure] = []
    for m in _FIGURE.finditer(t):
        whole, _, frac = m.group(2).partition(".")
        number = (whole.lstrip("0") or "0") + (f".{frac}" if frac else "")
        out.append(Figure(number, m.group(3) or "", bool(m.group(1))))
    return out


def _covered(fig: Figure, pool: Iterable[Figure]) -> bool:
    # 第3 needs 第3 in the passage; a plain 3 is fine with either. 30 and 30% differ.
    return any(p.number == fig.number and p.unit == fig.unit and (p.ordinal or not fig.ordinal) for p in pool)


def is_decline(text: str) -> bool:
    """The model says the passages do not settle the question and cites nothing."""
    return NOT_MENTIONED in normalise(text, fold_case=False) and not markers_in(text)


def _exempt(s: Sentence) -> bool:
    if NOT_MENTIONED in normalise(s.body, fold_case=False):
        return True
    if figures(s.body):
        return False
    return len(re.sub(r"\W", "", normalise(s.body, fold_case=False))) <= SHORT_LINE or s.body.rstrip().endswith(
        (":", "：")
    )


def _clip(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[:n] + "…"


def check_answer(text: str, passages: list[str], question: str = "") -> str | None:
    """None when the answer passes every rule above, else the reason (code: detail)."""
    if not text.strip():
        return "empty: the model returned no text (模型没有返回内容)"
    hit = INJECTION.search(normalise(text, keep_space=True, fold_case=False))
    if hit:
        return f"injection: answer echoes an instruction «{hit.group(0)}» (答案复述了段落中的指令)"
    cited = markers_in(text)
    if not cited:
        return "no_citation: the answer cites no passage (答案没有标注任何引用)"
    bad = sorted({n for n in cited if not 1 <= n <= len(passages)})
    if bad:
        return f"marker_out_of_range: [{bad[0]}] not in 1..{len(passages)} (引用编号[{bad[0]}]超出所给段落范围)"
    pools = [figures(p) for p in passages]
    anywhere = [f for pool in pools for f in pool] + figures(question)
    for s in split_claims(text):
        if not s.markers:
            if not _exempt(s):
                return f"unmarked_claim: «{_clip(s.body)}» has no [n] (该句没有标注引用)"
            pool = anywhere
        else:
            pool = [f for n in s.markers for f in pools[n - 1]]
        for fig in figures(s.body):
            if not _covered(fig, pool):
                where = "".join(f"[{n}]" for n in dict.fromkeys(s.markers)) or "any passage"
                return f"ungrounded_figure: {fig} is not in {where} (数字或日期“{fig}”不见于所引段落)"
    clean = [
        normalise(p)
        for p in (passages[n - 1] for n in set(cited))
        if not INJECTION.search(normalise(p, keep_space=True, fold_case=False))
    ]
    for m in URL.finditer(text):
        if not any(normalise(m.group(0)) in p for p in clean):
            where = _clip(m.group(0))
            return f"injection: address {where} is not in a cited passage (答案包含段落外或可疑段落中的网址)"
    return None
