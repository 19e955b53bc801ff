"""Extractive answers: pick the sentence(s) that settle the question from the retrieved
passages, or abstain. No LLM needed; the LLM mode reuses the same evidence and refusal rules.

A sentence's score blends how much of the question's (IDF-weighted) content it covers, how much
its passage with title and section path covers, the passage's retrieval score, and whether it
has what the question type asks for (a date for 何时, a figure for 多少, a list for 哪些).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rag.core.text import CJK, normalise, split_sentences
from rag.core.types import Hit
from rag.index.bm25 import rarest
from rag.query.question import Question
from rag.query.terms import DATE_Q, HOW_MANY_Q, NUM_Q

_ORDINAL_FIRST = re.compile(r"(?:^|[：:，,])\s*(?:一是|第一[，,、])")
_ORDINAL_NEXT = re.compile(r"\s*(?:[二三四五六七八九十]是|第[二三四五六七八九十][，,、])")
_ITEM_TITLE = re.compile(r"^(?:[（(]?[一二三四五六七八九十\d]+[)）]?[.．、]?)\s*\S{0,30}?[。：:]?$")
HAS_DATE = re.compile(r"\d{4}\s*年|年底|年前|年内|月底|\d+月|每年|“十四五”期间|期间")
# Regulations write figures in Chinese numerals with a unit: "处五千元以上五万元以下的罚款", "十五日内",
# 二倍, 十八周岁. A numeral with a unit is a figure; a bare one ("三项制度") is not, for 多少.
_CN_NUMERAL = "[一二三四五六七八九十百千万两]+"
_FIGURE_UNITS = "元|日|天|倍|周岁|岁|人|小时|学时|年|次|户"
HAS_NUM = re.compile(rf"\d|百分之|{_CN_NUMERAL}(?:{_FIGURE_UNITS}|个|项|家|件|名|级|类|成|月|所|条)")
HAS_AMOUNT = re.compile(rf"\d|百分之|{_CN_NUMERAL}(?:{_FIGURE_UNITS}|个月|平方米|米|公里|吨)")
# "多久", "多长时间", "期限": a period answers it as well as a date ("十五日内", "三个月", "二年").
DURATION_Q = re.compile(r"多久|多长时间|多长|期限|时限|几年|几天|几个月|多少天|多少日|多少年|多少个月")
HAS_DURATION = re.compile(
    r"(?:\d+|[一二三四五六七八九十百两]+)\s*(?:个)?(?:工作)?(?:日|天|月|年|小时|周)(?:内|以内|之内|前|后|以上|起)?"
)
HAS_LIST = re.compile(r"、|；|：|包括|分别")
# "由哪个机构…": a sentence naming an office answers it (区行政检察监督办, 区司法局, 领导小组).
HAS_ORG = re.compile(r"[区市县镇街][\u4e00-\u9fff]{1,10}?(?:局|办|委员会|委|中心|小组|办公室|部门|机关|所|院)")
HAS_DEF = re.compile(r"是指|指的是|是.{0,12}的|即|称为|：")
# "到2025年6月", "（2021—2025年）" date a figure; they are not the figure.
_YEAR = re.compile(r"(?:19|20)\d\d\s*(?:[-—–~至到]\s*(?:19|20)\d\d\s*)?年(?:\d{1,2}月(?:\d{1,2}日)?)?")
HAS_RANK = re.compile(
    r"(?:全[市区国]|郊区|位居|名列|排名|位列)[^，。；]{0,4}第[一二三四五六七八九十\d]+|前列|前茅|前[一二三四五六七八九十\d]+名|"
    r"之一|首位|领先|最[好佳优强]"
)
# 第三个, “八五”普法 — but not “十四五”, which names this plan, not an answer.
HAS_ORDINAL = re.compile(
    r"第[一二三四五六七八九十\d]+个|(?<![一二三四五六七八九十])[一二三四五六七八九]五(?![一二三四五六七八九十年])"
)
# A run of short items joined by 、 ("马上办、网上办、就近办"): what a list question wants.
_ENUM = re.compile(r"(?:[\u3400-\u9fff]{1,8}、)+[\u3400-\u9fff]{1,8}")
# "哪几个“办”" asks for the items that share a quoted mark (quotes taken in pairs, in order).
RETRO_SECTION = re.compile(r"发展现状|发展背景|成效回顾|主要成效|工作回顾|主要成绩|发展基础")
_TIMEY = re.compile(r"[天日月年时内前后次多少几]")  # 天内, 前要, 多次: the asked period, not the topic
_ARTICLE = re.compile(r"第[一二三四五六七八九十百零〇\d]+条")
_NUM = r"(?:\d[\d,.]*|[一二两三四五六七八九十百千万]+)"


# A unit as people ask for it and as regulations write it: "多少天" is answered by "十五日内" and
# "七个工作日", "几个月" by "六个月".
_UNIT_FORMS = {"天": r"(?:个)?(?:工作)?[日天]", "个月": r"个?月", "小时": r"个?小时"}


def has_quantity(sentence: str, unit: str) -> bool:
    if unit == "%":
        return bool(re.search(r"\d\s*%|百分之", sentence))
    return bool(re.search(_NUM + r"\s*(?:余|多)?" + _UNIT_FORMS.get(unit, re.escape(unit)), sentence))


@dataclass(frozen=True)
class AnswerParams:
    w_sent: float = 0.55  # sentence coverage of the question's content
    w_chunk: float = 0.25  # passage (+ title/section header) coverage
    w_retr: float = 0.20  # fused retrieval score, normalised to the best hit
    w_tri: float = 0.15  # question trigrams found in the sentence: rewards contiguous phrases
    type_bonus: float = 0.08
    def_bonus: float = 0.3  # "X：…" / "X是指…" for a question asking what X is
    title_credit: float = 0.85  # sentence + its item title, discounted, when that covers more
    tense_penalty: float = 0.2  # a look-back sentence for a look-ahead question, or the reverse
    type_penalty: float = 0.75  # asks for a date/figure the sentence lacks
    extra_ratio: float = 0.85  # further sentences kept when this close to the best
    district_ratio: float = 0.6  # per-district answers kept when this close to the best
    max_sentences: int = 3
    min_coverage: float = 0.2  # the best sentence must cover this share of the question's content
    anchor_terms: int = 1  # the question's rarest known terms: a figure or date must come with them
    anchor_penalty: float = 0.5
    anchor_kinds: tuple[str, ...] = ("date", "number")
    who_bonus: float = 0.08  # a who-question: the sentence names an office
    mark_bonus: float = 0.3  # "哪几个“办”": items that share the quoted mark
    head_bonus: float = 0.05  # "什么性质的部门": the sentence names the asked noun


@dataclass(frozen=True)
class Scored:
    hit: Hit
    sentence: str
    position: int  # index of the sentence inside the chunk
    score: float
    coverage: float


def is_heading(sentence: str, title: str) -> bool:
    """An item's own title sentence ("21. 发挥司法所…作用。") or a bare formula ("特此通知。") says
    what a passage is about, not what it states; the citation shows it anyway."""
    core = sentence.rstrip("。：:；;")
    if title and core and (core in title or title.endswith(core)):
        return True
    return len(CJK.findall(core)) < 6 and not re.search(r"\d", core)


def defines(sentence: str, term: str) -> bool:
    """The sentence is a definition of `term`: "两区一堡：…", "…两区一堡是指…", "两区一堡，即…",
    "所称归侨，是指…", "华侨房屋包括…"."""
    # Regulations write "本条例所称革命遗址，是指…，主要包括：": a comma may part the term from its verb.
    return bool(
        re.search(
            re.escape(term) + r"[”\"」*]*[，,]?(?:[：:]|是指|指的是|即(?![时将使便刻])|就是|(?:主要)?包括)", sentence
        )
    )


def enumeration(sentence: str, mark: str) -> int:
    """The most 、-joined short items holding `mark` in one run of the sentence."""
    return max((sum(1 for i in run.split("、") if mark in i) for run in _ENUM.findall(sentence)), default=0)


def _coverage(
    terms: list[str], text: str, idf: dict[str, float], unseen: float, alts: Mapping[str, frozenset[str]]
) -> float:
    if not terms:
        return 0.0
    total = sum(idf.get(t, unseen) for t in terms)
    got = sum(idf.get(t, unseen) for t in terms if t in text or any(a in text for a in alts.get(t, ())))
    return got / total if total else 0.0


def score_sentences(q: Question, hits: list[Hit], idf: dict[str, float], p: AnswerParams) -> list[Scored]:
    """Every sentence of every hit, scored, best first. A question word is also found as one of
    its synonyms (`q.alts`, rag/query/synonyms.py)."""
    terms, alts, tri, kind, nq, unit = list(q.terms), q.alts, list(q.trigrams), q.kind, q.normalised, q.unit
    # A term the index has never seen is as specific as it gets: weigh it like the rarest one
    # (computed once per question: per sentence it was most of the latency at 100k chunks).
    unseen = rarest(idf)
    term = q.defined
    past_q, future_q = q.past, q.future
    duration_q = bool(DURATION_Q.search(nq))
    rank_q, ordinal_q = q.rank, q.ordinal
    marks = list(q.marks)
    head = q.head
    # Anchors are topic words: 年底/期限/比例 are the asked attribute itself, whatever their IDF.
    # Only two-character words and the aligned halves of longer compounds (行政复议 → 行政, 复议;
    # 开发商 → 开发): a bigram straddling two morphemes (发商, 政复) is rare in the index because
    # no text writes it, not because it names the topic.
    words = {w[i : i + 2] for w in q.words for i in range(0, len(w) - 1, 2) if not _TIMEY.search(w[i : i + 2])}
    known = sorted(
        (
            t
            for t in terms
            if t in idf and t in words and not (DATE_Q.search(t) or NUM_Q.search(t) or HAS_DATE.search(t))
        ),
        key=lambda t: -idf[t],
    )
    out: list[Scored] = []
    for hit in hits:
        chunk_cov = _coverage(terms, normalise(hit.chunk.embed_text), idf, unseen, alts)
        title = normalise(hit.chunk.section_path[-1]) if hit.chunk.section_path else ""
        header = normalise(hit.chunk.title + "".join(hit.chunk.section_path))
        # Words of the document's own title (“十四五”规划) name the document, not the fact asked
        # for; beside 233 regulations they turn rare and would otherwise be the anchor.
        doc_title = normalise(hit.chunk.title)
        anchors = [t for t in known if t not in doc_title][: p.anchor_terms] if kind in p.anchor_kinds else []
        retro = bool(RETRO_SECTION.search(hit.chunk.section))
        # A regulation's article (第十二条 …) is one rule: its later sentences ("逾期不改正的，处…罚款")
        # drop the subject its first one named, so an anchor may be anywhere in the article.
        article = normalise(hit.chunk.text) if _ARTICLE.match(hit.chunk.text.lstrip()) else ""
        # Only the look-ahead direction: regulations have no review sections to prefer.
        mistimed = future_q and not past_q and retro
        for pos, sent in enumerate(split_sentences(hit.chunk.text, drop_blank=True)):
            ns = normalise(sent)
            if is_heading(ns, title):
                continue
            cov = _coverage(terms, ns, idf, unseen, alts)
            if p.title_credit:
                # The item title says what its sentences are about ("1. 建设政务服务平台。2023年底前完成。").
                cov = max(cov, p.title_credit * _coverage(terms, doc_title + title + ns, idf, unseen, alts))
            tri_cov = sum(1 for t in tri if t in ns) / len(tri) if tri else cov
            score = p.w_sent * cov + p.w_chunk * chunk_cov + p.w_retr * hit.score + p.w_tri * tri_cov
            if kind == "date":
                dated = bool(HAS_DATE.search(ns)) or (duration_q and bool(HAS_DURATION.search(ns)))
                score += p.type_bonus if dated else -p.type_penalty
            elif kind == "number":
                rx = HAS_AMOUNT if HOW_MANY_Q.search(nq) else HAS_NUM
                # "到2025年" dates the figure; it is not the figure.
                figures = _YEAR.sub("", ns)
                ok = has_quantity(figures, unit) if unit else bool(rx.search(figures))
                if not ok and not unit and "多少" not in nq:  # "提升了多少位" wants a figure
                    ok = (rank_q and bool(HAS_RANK.search(ns))) or (ordinal_q and bool(HAS_ORDINAL.search(ns)))
                score += p.type_bonus if ok else -p.type_penalty
            if mistimed:
                score -= p.tense_penalty
            if any(a not in ns and a not in header and a not in article for a in anchors):
                # "哪一年完成证明事项清理" next to "2022年底前完成执法证件换发": a date, but not of this.
                score -= p.anchor_penalty
            if head and head in ns:
                score += p.head_bonus
            if marks and any(enumeration(ns, m) >= 3 for m in marks):
                # The quoted mark is the question's own key: its items answer it, whatever else matches.
                score += p.mark_bonus
                cov = max(cov, p.min_coverage) if cov else cov
            if kind == "who" and HAS_ORG.search(ns):
                score += p.who_bonus
            if kind == "list" and HAS_LIST.search(ns):
                score += p.type_bonus
            if kind == "list" and term and defines(ns, term):  # "X包括哪几类" → "X包括：…"
                score += p.def_bonus
            elif kind == "definition" and term and defines(ns, term):
                score += p.def_bonus
            elif kind == "definition" and HAS_DEF.search(ns):
                score += p.type_bonus
            out.append(Scored(hit, sent.strip(), pos, score, cov))
    out.sort(key=lambda s: -s.score)
    return out


def select_evidence(scored: list[Scored], p: AnswerParams) -> list[Scored]:
    """The best sentence plus close runners-up from the same passage, in reading order."""
    if not scored:
        return []
    best = scored[0]
    same = [
        s
        for s in scored[1:]
        if s.hit.chunk.id == best.hit.chunk.id and s.score >= p.extra_ratio * best.score and s.coverage > 0
    ]
    picked = sorted([best, *same[: p.max_sentences - 1]], key=lambda s: s.position)
    # Sentences after the last pick, in its passage and in reading order.
    last = picked[-1]
    after = sorted(
        (s for s in scored if s.hit.chunk.id == last.hit.chunk.id and s.position > last.position),
        key=lambda s: s.position,
    )
    if _ORDINAL_FIRST.search(last.sentence):
        # "差距：一是政府职能转变亟需加快。（详述）二是…" — the enumeration's heads are the answer,
        # not its first item; the sentences elaborating each head stay in the cited passage.
        picked += [s for s in after if _ORDINAL_NEXT.match(s.sentence)][:9]
    elif last.sentence.endswith(("：", ":")):
        # A lead-in ("具体体现在：") announces what follows: the answer is the list after it.
        picked += after[: p.max_sentences + 2]
    return picked
