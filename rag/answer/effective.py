"""What a document says of itself: "北京促进科技成果转化条例啥时候开始实施的？" is answered by that
regulation's own article "本条例自2020年1月1日起施行。", wherever it sits; likewise what it repealed
(…同时废止), when and by which meeting it was adopted or amended (its head lines: "…会议通过",
"…第二次修正"), what it applies to (本条例适用于…) and why it was made (为了…，制定本条例). The
question's words all name the document (its title matches every article), so neither retrieval
nor sentence scoring can single out the clause that answers; the document's structure can.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.answer.score import Scored
from rag.core.text import CJK, normalise, split_sentences
from rag.core.types import Chunk, Hit
from rag.ingest.versions import STEP_RE
from rag.query.question import Question

# The asked event: taking effect (施行, 实施, 生效, 开始执行 …), not a deadline inside the text.
EFFECTIVE_Q = re.compile(r"施行|实施|生效|开始执行|开始实行|起效|正式执行")
# The document's own effect clause: "本条例自2023年3月1日起施行", "本规定自公布之日起施行".
EFFECT_CLAUSE = re.compile(
    r"本(?:条例|规定|办法|细则|决定|规则|决议|意见|通知)[^。；]{0,40}?自[^。；]{2,40}?(?:施行|生效|执行)"
)
# The asked repeal, and the document's own repeal clause ("《…条例》同时废止", "…自本条例施行之日起废止").
REPEAL_Q = re.compile(r"废止|废除")
REPEAL_CLAUSE = re.compile(r"同时废止|同时废除|之日起[^。]{0,60}?废止|》[^。]{0,30}?废止")
# When or by whom it was adopted or amended: the document's head lines ("2021年9月29日广东省第十三届
# 人民代表大会常务委员会第三十五次会议通过", "…第二次修正"); asked only with when/who/会议, since
# "通过政务平台共享", "多大比例通过" and "由谁批准" are other things.
_DOC = r"(?:条例|规定|办法|细则|决定)"
ADOPTED_Q = re.compile(
    rf"{_DOC}[^，。？]{{0,4}}通过|哪次会议|什么会议|哪个会议|(?:什么时候|何时|哪年|哪天)(?:被)?(?:通过|批准)"
)

AMENDED_Q = re.compile(
    rf"{_DOC}[^，。？]{{0,6}}(?:修正|修订|修改)|(?:什么时候|何时|哪年|哪天)(?:被)?(?:修正|修订|修改)"
    r"|(?:修正|修订|修改)(?:过)?(?:几|多少)次|(?:最近|最后|上)一次(?:修正|修订|修改)"
)
LATEST_Q = re.compile(r"最近|最新|最后|最晚|上一次")
# Its scope and purpose articles: "本条例适用于本市行政区域内…", "为了…，制定本条例".
SCOPE_Q = re.compile(rf"{_DOC}[^，。？]{{0,3}}(?:适用|管哪|管什么)")
SCOPE_CLAUSE = re.compile(r"本(?:条例|规定|办法|细则)适用于|适用本(?:条例|规定|办法|细则)")
PURPOSE_Q = re.compile(rf"{_DOC}[^，。？]{{0,3}}(?:立法)?(?:目的|宗旨)|(?:为什么|为何|为了什么)(?:要)?制定")
PURPOSE_CLAUSE = re.compile(r"^(?:第一条)?\s*为(?:了)?[^。]{4,200}?(?:制定|结合本[市省]实际)")
# A title that implements a law: 上海市实施《中华人民共和国食品安全法》办法, 实施食品安全法办法.
_IMPLEMENTING = re.compile(r"实施《?[^，。？?《》]{1,24}?法》?(?:办法|条例|细则|规定)")
# The short forms people write for a title's long ones ("人大常委会" for 人民代表大会常务委员会), and
# the bracketed alternatives a title carries ("区县（自治县）"): compared in the short form.
_SHORT_FORMS = (("人民代表大会常务委员会", "人大常委会"), ("人民代表大会", "人大"), ("人民政府", "政府"))
_BRACKETED = re.compile(r"（[^（）]{1,8}）|\([^()]{1,8}\)")
TITLE_SHARE = 0.75  # of the title's characters (beyond place names) the question must hold
DOCS = 3  # the documents of the first hits that may be the named one


def first_per_document(hits: Sequence[Hit], docs: int = DOCS) -> list[Hit]:
    """The best hit of each of the first `docs` documents among `hits`, in hit order."""
    firsts: dict[str, Hit] = {}
    for h in hits:
        firsts.setdefault(h.chunk.doc_id, h)
    return list(firsts.values())[:docs]


def named_hits(q: Question, hits: Sequence[Hit]) -> list[Hit]:
    """The best hit of each document among the first that the question names (best first)."""
    return [h for h in first_per_document(hits) if names_document(q, h.chunk.title)]


def _adopted(sentence: str) -> bool:
    """A head line of the history (rag.ingest.versions) that passed it at a meeting."""
    return any(m.group("act") in ("通过", "批准") and "会议" in m.group("body") for m in STEP_RE.finditer(sentence))


def _amended(sentence: str) -> bool:
    """A head line of the history that amended or revised it."""
    return any("修" in m.group("act") for m in STEP_RE.finditer(sentence))


def names_document(q: Question, title: str) -> bool:
    """The question names this document: it holds most of the title's characters beyond its place
    names, and names no other place than the title's ("广东省物业管理条例" is not 北京市's)."""
    t = _short(normalise(title))
    asked_text = _short(q.normalised)
    places = [n for n in q.drop if n in t]
    asked = [n for n in q.drop if n in asked_text]
    if places and asked and not any(a in t for a in asked):
        return False
    for n in places:
        t = t.replace(n, "")
    chars = {c for c in t if CJK.match(c)}
    return bool(chars) and len(chars & set(asked_text)) / len(chars) >= TITLE_SHARE


def _short(text: str) -> str:
    text = _BRACKETED.sub("", text).replace("中华人民共和国", "")  # 实施《动物防疫法》办法 is how people say it
    for long, short in _SHORT_FORMS:
        text = text.replace(long, short)
    return text


def _asked(q: Question) -> list[tuple[Callable[[str], object], str]]:
    """Tests for the clauses the question asks for, each with which of its occurrences answer."""
    asked = _IMPLEMENTING.sub("", q.normalised)  # the 实施 of a title is not the asked event
    when_or_who = q.kind in ("date", "who") or "会议" in asked
    out: list[tuple[Callable[[str], object], str]] = []
    if q.kind == "date" and EFFECTIVE_Q.search(asked):
        out.append((EFFECT_CLAUSE.search, "first"))
    if REPEAL_Q.search(asked):
        out.append((REPEAL_CLAUSE.search, "first"))
    if when_or_who and ADOPTED_Q.search(asked):
        out.append((_adopted, "first"))
    if (when_or_who or q.kind in ("number", "list")) and AMENDED_Q.search(asked):
        out.append((_amended, "last" if LATEST_Q.search(asked) else "all"))
    if SCOPE_Q.search(asked):
        out.append((SCOPE_CLAUSE.search, "first"))
    if PURPOSE_Q.search(asked):
        out.append((PURPOSE_CLAUSE.search, "first"))
    return out


def effective_answer(q: Question, hits: Sequence[Hit], by_doc: dict[str, list[Chunk]]) -> list[Scored]:
    """The clauses of the document the question names that say what it asks of that document:
    when it takes effect, what it repealed, when it was adopted or amended, its scope, its purpose
    (each asked one, in document order)."""
    wanted = _asked(q)
    if not wanted:
        return []
    for hit in named_hits(q, hits):
        met: dict[int, list[Scored]] = {}
        for chunk in by_doc.get(hit.chunk.doc_id, []):
            for pos, sentence in enumerate(split_sentences(chunk.text, drop_blank=True)):
                for i, (says, _) in enumerate(wanted):
                    if says(sentence):
                        met.setdefault(i, []).append(
                            Scored(Hit(chunk, hit.score, hit.ranks), sentence.strip(), pos, hit.score, 1.0)
                        )
        picked = {
            (s.hit.chunk.id, s.position): s
            for i, found in sorted(met.items())
            for s in (found[:1] if wanted[i][1] == "first" else found[-1:] if wanted[i][1] == "last" else found[:4])
        }
        if picked:  # what the named document says of it, though it may say nothing of the rest
            return sorted(picked.values(), key=lambda s: (s.hit.chunk.order, s.position))
    return []


def repeal_unstated(q: Question, hits: Sequence[Hit], by_doc: dict[str, list[Chunk]]) -> bool:
    """The question asks what the document it names repealed, and that document repeals nothing:
    the nearest passage on 废止 elsewhere would be another document's answer."""
    if not REPEAL_Q.search(_IMPLEMENTING.sub("", q.normalised)):
        return False
    named = named_hits(q, hits)
    if not named:
        return False
    chunks = by_doc.get(named[0].chunk.doc_id, [])
    return not any(REPEAL_CLAUSE.search(c.text) for c in chunks)
