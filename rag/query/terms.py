"""What the question asks: its words and content terms, its kind (when, how many, which, what
is X, who), the unit or noun it wants, and the synonyms of its words.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping

from rag.core.text import CJK, normalise

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

DATE_Q = re.compile(
    r"何时|什么时候|啥时候|哪一?年|哪天|哪一天|日期|时间|期限|时限|截止|多久|几年|年底|什么时间|节点|完成时|搞完|到期"
)
NUM_Q = re.compile(r"多少|几个|几项|几家|几次|比例|百分|数量|比率|率是|达到了?多|占比|多大|排名|第几|几成")
LIST_Q = re.compile(r"哪些|包括|有哪|包含|分别|几个方面|哪几")
DEF_Q = re.compile(r"是什么|指什么|什么是|含义|定义|意思|是指|何谓|解释")
WHO_Q = re.compile(r"谁|哪个部门|哪些部门|哪个单位|哪个机构|由谁|牵头|负责(?!人)|发文|印发|机关")
HOW_MANY_Q = re.compile(r"多少|比例|百分|比率|占比")  # wants a figure, not "三项制度"
# "排名里处在什么位置", "第几个五年" ask for a rank or an ordinal, which plans write in words.
RANK_Q = re.compile(r"排名|名次|位次|什么位置|什么水平")
ORDINAL_Q = re.compile(r"第几")
# "什么性质的部门", "哪种调解": the noun the answer is an instance of.
_HEAD_Q = re.compile(
    r"(?:什么|哪种|哪类|哪一种|何种)(?!时候|时间|意思)((?:样|性质|类型|层次|级别)?的)?([\u3400-\u9fff]+)"
)


# A plan looks back (发展现状 › 成效回顾: what 十三五 achieved) before it looks ahead (主要任务):
# "提出了什么要求" is answered by the second, "取得了哪些成果" by the first.
PAST_Q = re.compile(r"十三五|取得了|取得的|取得哪些|成效|成绩|回顾|过去")
FUTURE_Q = re.compile(r"要求|计划|打算|准备|目标|力争|将要|要在|要实现|提出了?什么|怎么做|如何做|举措|措施")

# "多少名律师" wants "<number>名": the measure word tells which figure would answer it.
_UNIT_Q = re.compile(
    r"(?<!第)(?:多少|几)(亿元|万元|千元|元|名|个|件|项|次|人次|人|家|所|天|年|小时|学时|个月|%|倍|户|条|部|支)"
)


def required_unit(question: str) -> str | None:
    m = _UNIT_Q.search(normalise(question))
    if m:
        return m.group(1)
    if re.search(r"百分之几|多少%|比例是多少|比例为多少|占比", normalise(question)):
        return "%"
    return None


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
        if CJK.match(run):
            # Single characters (是, 以, 年, 前 …) say little about the topic; bigrams do.
            terms.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            terms.append(run)
    return list(dict.fromkeys(terms))


_DEF_TERM = re.compile(
    r"[“\"「]([^”\"」]{2,20})[”\"」](?:的?含义|指的?是|是指|是什么|指什么|具体指)|^(\w{2,12}?)(?:的含义|指的?是|是指|是什么意思|是什么|指什么)"
)


_LIST_TERM = re.compile(r"(\w{2,30}?)(?:主要|具体|一般)?(?:包括|包含|分为)(?:哪|什么)")


def defined_term(question: str, kind: str = "definition") -> str | None:
    """ "“两区一堡”指的是什么？" → "两区一堡": the term a definition question asks about; for a
    list question, the term whose parts it asks for ("…规定的革命遗址主要包括哪些" → "革命遗址")."""
    q = normalise(question)
    if kind == "list":
        m = _LIST_TERM.search(q)
    else:
        m = _DEF_TERM.search(q) or re.search(r"什么(?:是|叫)[“\"]?(\w{2,20})[”\"]?[？?]?$", q)
    if not m:
        return None
    term = next(g for g in m.groups() if g)
    return term.rsplit("的", 1)[-1] if len(term.rsplit("的", 1)[-1]) >= 2 else term


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
