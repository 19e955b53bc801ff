"""Extractive answers: pick the sentence(s) that settle the question from the retrieved
passages, or abstain. No LLM needed; the LLM mode reuses the same evidence and refusal rules.

A sentence's score blends how much of the question's (IDF-weighted) content it covers, how much
its passage with title and section path covers, the passage's retrieval score, and whether it
has what the question type asks for (a date for 何时, a figure for 多少, a list for 哪些).
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from .types import Hit

# Question scaffolding: words that say what kind of answer is wanted, not what it is about.
_STOP = (
    "请问 一下 什么 是什么 为什么 什么时候 啥时候 啥 哪些 哪个 哪项 哪一年 哪年 哪里 哪儿 多少 几个 几项 几年 多久 何时 如何 怎么 怎样 "
    "怎么样 是否 有没有 有无 吗 呢 吧 呀 啊 的 了 在 和 与 及 对 把 被 要 会 能 该 这 那 那边 这边 里 中 上 "
    "规划 提到 提出 关于 方面 有关 说 讲 规定 明确 根据 按照 情况 内容 问题 我们 你们 一 个 搞 完 做 到"
)
STOP_WORDS = frozenset(_STOP.split())
# The same scaffolding as phrases, cut out before segmentation: jieba glues "哪几个", "什么样",
# "在哪些方面" into words the index has never seen, and an unseen term weighs as the rarest.
SCAFFOLD = re.compile(
    r"从长远(?:来)?看|长远来看|总的来说|总体(?:上|来)看|处[在于]什么(?:样的)?(?:位置|水平)|给自己|自己|"
    r"(?:什么|啥)时候|什么样的?|什么|哪几[个项对种类条点方面]*|哪些方面|哪些|哪个|哪种|哪一[年个项种天]?|哪年|哪里|哪儿|哪天|"
    r"第几[个次]?|几[个项对种条次家名点]|多少|大约|大概|左右|是不是|会不会|能不能|有没有|可不可以|怎么样|怎么|"
    r"怎样|如何|为什么|啥|咋|请问|打算|准备|希望|想要|有何|何种|何时|具体|分别|各种|那边|这边|这块|一下"
)
_CJK = re.compile(r"[\u3400-\u9fff]")
_SENT = re.compile(r"[^。！？；!?;\n]*(?:[。！？；!?;]+[”’」』）)]*|\n|$)")
_ORDINAL_FIRST = re.compile(r"(?:^|[：:，,])\s*(?:一是|第一[，,、])")
_ORDINAL_NEXT = re.compile(r"\s*(?:[二三四五六七八九十]是|第[二三四五六七八九十][，,、])")
_ITEM_TITLE = re.compile(r"^(?:[（(]?[一二三四五六七八九十\d]+[)）]?[.．、]?)\s*\S{0,30}?[。：:]?$")

DATE_Q = re.compile(
    r"何时|什么时候|啥时候|哪一?年|哪天|哪一天|日期|时间|期限|时限|截止|多久|几年|年底|什么时间|节点|完成时|搞完|到期"
)
NUM_Q = re.compile(r"多少|几个|几项|几家|几次|比例|百分|数量|比率|率是|达到了?多|占比|多大|排名|第几|几成")
LIST_Q = re.compile(r"哪些|包括|有哪|包含|分别|几个方面|哪几")
DEF_Q = re.compile(r"是什么|指什么|什么是|含义|定义|意思|是指|何谓|解释")
WHO_Q = re.compile(r"谁|哪个部门|哪些部门|哪个单位|哪个机构|由谁|牵头|负责(?!人)|发文|印发|机关")
HAS_DATE = re.compile(r"\d{4}\s*年|年底|年前|年内|月底|\d+月|每年|“十四五”期间|期间")
HAS_NUM = re.compile(r"\d|百分之|[一二三四五六七八九十百千万两]+(?:个|项|家|次|件|名|级|类|成)")
HAS_DIGIT = re.compile(r"\d|百分之")
HOW_MANY_Q = re.compile(r"多少|比例|百分|比率|占比")  # wants a figure, not "三项制度"
HAS_LIST = re.compile(r"、|；|：|包括|分别")
# "由哪个机构…": a sentence naming an office answers it (区行政检察监督办, 区司法局, 领导小组).
HAS_ORG = re.compile(r"[区市县镇街][\u4e00-\u9fff]{1,10}?(?:局|办|委员会|委|中心|小组|办公室|部门|机关|所|院)")
HAS_DEF = re.compile(r"是指|指的是|是.{0,12}的|即|称为|：")
# "到2025年6月", "（2021—2025年）" date a figure; they are not the figure.
_YEAR = re.compile(r"(?:19|20)\d\d\s*(?:[-—–~至到]\s*(?:19|20)\d\d\s*)?年(?:\d{1,2}月(?:\d{1,2}日)?)?")
# "排名里处在什么位置", "第几个五年" ask for a rank or an ordinal, which plans write in words.
RANK_Q = re.compile(r"排名|名次|位次|什么位置|什么水平")
HAS_RANK = re.compile(
    r"(?:全[市区国]|郊区|位居|名列|排名|位列)[^，。；]{0,4}第[一二三四五六七八九十\d]+|前列|前茅|前[一二三四五六七八九十\d]+名|"
    r"之一|首位|领先|最[好佳优强]"
)
ORDINAL_Q = re.compile(r"第几")
# 第三个, “八五”普法 — but not “十四五”, which names this plan, not an answer.
HAS_ORDINAL = re.compile(
    r"第[一二三四五六七八九十\d]+个|(?<![一二三四五六七八九十])[一二三四五六七八九]五(?![一二三四五六七八九十年])"
)
# A run of short items joined by 、 ("马上办、网上办、就近办"): what a list question wants.
_ENUM = re.compile(r"(?:[\u3400-\u9fff]{1,8}、)+[\u3400-\u9fff]{1,8}")
# "哪几个“办”" asks for the items that share a quoted mark (quotes taken in pairs, in order).
_QUOTED = re.compile(r"“([^”]*)”|\"([^\"]*)\"|「([^」]*)」")
# "什么性质的部门", "哪种调解": the noun the answer is an instance of.
_HEAD_Q = re.compile(
    r"(?:什么|哪种|哪类|哪一种|何种)(?!时候|时间|意思)((?:样|性质|类型|层次|级别)?的)?([\u3400-\u9fff]+)"
)


# A plan looks back (发展现状 › 成效回顾: what 十三五 achieved) before it looks ahead (主要任务):
# "提出了什么要求" is answered by the second, "取得了哪些成果" by the first.
PAST_Q = re.compile(r"十三五|取得了|取得的|取得哪些|成效|成绩|回顾|过去")
FUTURE_Q = re.compile(r"要求|计划|打算|准备|目标|力争|将要|要在|要实现|提出了?什么|怎么做|如何做|举措|措施")
RETRO_SECTION = re.compile(r"发展现状|发展背景|成效回顾|主要成效|工作回顾|主要成绩|发展基础")

# "多少名律师" wants "<number>名": the measure word tells which figure would answer it.
_UNIT_Q = re.compile(
    r"(?<!第)(?:多少|几)(亿元|万元|千元|元|名|个|件|项|次|人次|人|家|所|天|年|小时|学时|个月|%|倍|户|条|部|支)"
)
_NUM = r"(?:\d[\d,.]*|[一二两三四五六七八九十百千万]+)"


def required_unit(question: str) -> str | None:
    m = _UNIT_Q.search(normalise(question))
    if m:
        return m.group(1)
    if re.search(r"百分之几|多少%|比例是多少|比例为多少|占比", normalise(question)):
        return "%"
    return None


def has_quantity(sentence: str, unit: str) -> bool:
    if unit == "%":
        return bool(re.search(r"\d\s*%|百分之", sentence))
    return bool(re.search(_NUM + r"\s*(?:余|多)?" + re.escape(unit), sentence))


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


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", re.sub(r"\s+", "", text)).lower()


def split_sentences(text: str) -> list[str]:
    """Sentences ending at 。！？； (with closing quotes); nothing is dropped."""
    return [s for s in _SENT.findall(text) if s.strip()]


def trigrams(terms: list[str]) -> list[str]:
    """Trigrams made of consecutive overlapping bigrams (研究, 究部 → 研究部)."""
    return [a + b[1] for a, b in itertools.pairwise(terms) if len(a) == 2 and len(b) == 2 and a[1] == b[0]]


@functools.lru_cache(maxsize=512)
def question_words(question: str, drop: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The question segmented, without scaffolding and names of districts (scope is handled by
    metadata, not by words). Cached: terms, synonyms and structural lists all start from it."""
    q = SCAFFOLD.sub(" ", normalise(question))
    for d in drop:
        q = q.replace(d, " ")
    import jieba

    return tuple(jieba.lcut(q))


def query_terms(question: str, drop: tuple[str, ...] = ()) -> list[str]:
    """Content bigrams of the question's words (and Latin/digit words)."""
    words = [w for w in question_words(question, drop) if w.strip() and w not in STOP_WORDS]
    kept = " ".join(words)
    terms: list[str] = []
    for run in re.findall(r"[\u3400-\u9fff]+|[a-z0-9.%]+", kept):
        if _CJK.match(run):
            # Single characters (是, 以, 年, 前 …) say little about the topic; bigrams do.
            terms.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            terms.append(run)
    return list(dict.fromkeys(terms))


def is_heading(sentence: str, title: str) -> bool:
    """An item's own title sentence ("21. 发挥司法所…作用。") or a bare formula ("特此通知。") says
    what a passage is about, not what it states; the citation shows it anyway."""
    core = sentence.rstrip("。：:；;")
    if title and core and (core in title or title.endswith(core)):
        return True
    return len(_CJK.findall(core)) < 6 and not re.search(r"\d", core)


_DEF_TERM = re.compile(
    r"[“\"「]([^”\"」]{2,20})[”\"」](?:的?含义|指的?是|是指|是什么|指什么|具体指)|^(\w{2,12}?)(?:的含义|指的?是|是指|是什么意思|是什么|指什么)"
)


def defined_term(question: str) -> str | None:
    """ "“两区一堡”指的是什么？" → "两区一堡": the term a definition question asks about."""
    q = normalise(question)
    m = _DEF_TERM.search(q) or re.search(r"什么(?:是|叫)[“\"]?(\w{2,20})[”\"]?[？?]?$", q)
    if not m:
        return None
    term = next(g for g in m.groups() if g)
    return term.rsplit("的", 1)[-1] if len(term.rsplit("的", 1)[-1]) >= 2 else term


def defines(sentence: str, term: str) -> bool:
    """The sentence is a definition of `term`: "两区一堡：…", "…两区一堡是指…", "两区一堡，即…"."""
    return bool(re.search(re.escape(term) + r"[”\"」*]*(?:[：:]|是指|指的是|，?即(?![时将使便刻])|就是)", sentence))


def enumeration(sentence: str, mark: str) -> int:
    """The most 、-joined short items holding `mark` in one run of the sentence."""
    return max((sum(1 for i in run.split("、") if mark in i) for run in _ENUM.findall(sentence)), default=0)


_VAGUE_HEADS = frozenset("方面 情况 内容 问题 工作 东西 样子 地方 办法 作用".split())


def head_noun(question: str) -> str | None:
    """ "把司法所建成什么性质的部门" → "部门", "哪种调解被当作…" → "调解": the noun an answer
    names an instance of."""
    m = _HEAD_Q.search(normalise(question))
    if not m:
        return None
    phrase = re.split(r"[被要会在是将把为的了吗呢？?，,。]", m.group(2))[0]
    if m.group(1):  # "什么样的全国性称号": the noun ends the phrase
        return phrase[-2:] if 2 <= len(phrase) <= 8 else None
    import jieba

    first = next(iter(jieba.lcut(phrase)), "")  # "什么部门牵头": the noun starts it
    return first if len(first) >= 2 and first not in _VAGUE_HEADS else None


def question_kind(question: str) -> str:
    q = normalise(question)
    if re.search(r"哪几(?![年天月日])|有哪些|包括哪", q) and not re.search(r"多少|比例", q):
        return "list"  # "哪几个“办”" asks for the items, not for a count
    for kind, rx in (("date", DATE_Q), ("number", NUM_Q), ("definition", DEF_Q), ("list", LIST_Q), ("who", WHO_Q)):
        if rx.search(q):
            return kind
    return "fact"


def synonym_alts(
    question: str, drop: tuple[str, ...], synonyms: Mapping[str, frozenset[str]]
) -> dict[str, frozenset[str]]:
    """Each bigram of a question word → the word's synonyms: "乡下" is found as 农村 or 乡村."""
    if not synonyms:
        return {}
    alts: dict[str, frozenset[str]] = {}
    for w in question_words(question, drop):
        for i in range(len(w) - 1) if w in synonyms else ():
            alts[w[i : i + 2]] = alts.get(w[i : i + 2], frozenset()) | synonyms[w]
    return alts


def _coverage(
    terms: list[str], text: str, idf: dict[str, float], unseen: float, alts: Mapping[str, frozenset[str]]
) -> float:
    if not terms:
        return 0.0
    total = sum(idf.get(t, unseen) for t in terms)
    got = sum(idf.get(t, unseen) for t in terms if t in text or any(a in text for a in alts.get(t, ())))
    return got / total if total else 0.0


def score_sentences(
    question: str,
    hits: list[Hit],
    idf: dict[str, float],
    drop: tuple[str, ...],
    p: AnswerParams,
    synonyms: Mapping[str, frozenset[str]] | None = None,
) -> list[Scored]:
    """Every sentence of every hit, scored, best first. A question word is also found as one of
    its `synonyms` (rag/synonyms.py)."""
    terms = query_terms(question, drop)
    alts = synonym_alts(question, drop, synonyms or {})
    # A term the index has never seen is as specific as it gets: weigh it like the rarest one
    # (computed once per question: per sentence it was most of the latency at 100k chunks).
    unseen = max(idf.values(), default=1.0)
    tri = trigrams(terms)
    kind = question_kind(question)
    nq = normalise(question)
    unit = required_unit(question)
    term = defined_term(question) if kind == "definition" else None
    past_q, future_q = bool(PAST_Q.search(nq)), bool(FUTURE_Q.search(nq))
    rank_q, ordinal_q = bool(RANK_Q.search(nq)), bool(ORDINAL_Q.search(nq))
    quoted = ["".join(g) for g in _QUOTED.findall(nq)]
    marks = [m for m in quoted if 1 <= len(m) <= 2 and _CJK.match(m)] if kind == "list" else []
    if kind == "list" and "几对" in nq:
        marks.append("与")  # pairs: "执法与服务结合、惩罚与教育互济"
    head = head_noun(question)
    # Anchors are topic words: 年底/期限/比例 are the asked attribute itself, whatever their IDF.
    known = sorted(
        (t for t in terms if t in idf and not (DATE_Q.search(t) or NUM_Q.search(t) or HAS_DATE.search(t))),
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
        # Only the look-ahead direction: regulations have no review sections to prefer.
        mistimed = future_q and not past_q and retro
        for pos, sent in enumerate(split_sentences(hit.chunk.text)):
            ns = normalise(sent)
            if is_heading(ns, title):
                continue
            cov = _coverage(terms, ns, idf, unseen, alts)
            if p.title_credit:
                # The item title says what its sentences are about ("1. 建设政务服务平台。2023年底前完成。").
                cov = max(cov, p.title_credit * _coverage(terms, title + ns, idf, unseen, alts))
            tri_cov = sum(1 for t in tri if t in ns) / len(tri) if tri else cov
            score = p.w_sent * cov + p.w_chunk * chunk_cov + p.w_retr * hit.score + p.w_tri * tri_cov
            if kind == "date":
                score += p.type_bonus if HAS_DATE.search(ns) else -p.type_penalty
            elif kind == "number":
                rx = HAS_DIGIT if HOW_MANY_Q.search(nq) else HAS_NUM
                # "到2025年" dates the figure; it is not the figure.
                figures = _YEAR.sub("", ns)
                ok = has_quantity(figures, unit) if unit else bool(rx.search(figures))
                if not ok and not unit and "多少" not in nq:  # "提升了多少位" wants a figure
                    ok = (rank_q and bool(HAS_RANK.search(ns))) or (ordinal_q and bool(HAS_ORDINAL.search(ns)))
                score += p.type_bonus if ok else -p.type_penalty
            if mistimed:
                score -= p.tense_penalty
            if any(a not in ns and a not in header for a in anchors):
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
