"""When a document takes effect: "北京促进科技成果转化条例啥时候开始实施的？" is answered by that
regulation's own article "本条例自2020年1月1日起施行。", wherever it sits. The question's words all
name the document (its title matches every article), so neither retrieval nor sentence scoring
can single out the article that answers; the document's structure can.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answer.score import Scored
from rag.core.text import CJK, normalise, split_sentences
from rag.core.types import Chunk, Hit
from rag.query.question import Question

# The asked event: taking effect (施行, 实施, 生效, 开始执行 …), not a deadline inside the text.
EFFECTIVE_Q = re.compile(r"施行|实施|生效|开始执行|开始实行|起效|正式执行")
# The document's own effect clause: "本条例自2023年3月1日起施行", "本规定自公布之日起施行".
EFFECT_CLAUSE = re.compile(
    r"本(?:条例|规定|办法|细则|决定|规则|决议|意见|通知)[^。；]{0,40}?自[^。；]{2,40}?(?:施行|生效|执行)"
)
# The asked repeal, and the document's own repeal clause ("《…条例》同时废止", "…自本条例施行之日起废止").
REPEAL_Q = re.compile(r"废止|废除")
REPEAL_CLAUSE = re.compile(r"同时废止|施行之日起废止|同时废除")
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


def effective_answer(q: Question, hits: Sequence[Hit], by_doc: dict[str, list[Chunk]]) -> list[Scored]:
    """The effect clause of the document the question names, when it asks when that takes effect,
    and its repeal clause when it asks what that repealed (both, when it asks both)."""
    asked = _IMPLEMENTING.sub("", q.normalised)  # the 实施 of a title is not the asked event
    effect = q.kind == "date" and bool(EFFECTIVE_Q.search(asked))
    repeal = bool(REPEAL_Q.search(asked))
    if not (effect or repeal):
        return []
    for hit in first_per_document(hits):
        if not names_document(q, hit.chunk.title):
            continue
        found: list[Scored] = []
        wanted = [rx for rx, asked in ((EFFECT_CLAUSE, effect), (REPEAL_CLAUSE, repeal)) if asked]
        for chunk in by_doc.get(hit.chunk.doc_id, []):
            for pos, sentence in enumerate(split_sentences(chunk.text, drop_blank=True)):
                met = [rx for rx in wanted if rx.search(sentence)]
                if met:
                    found.append(Scored(Hit(chunk, hit.score, hit.ranks), sentence.strip(), pos, hit.score, 1.0))
                    wanted = [rx for rx in wanted if rx not in met]  # the first of each: the document's own
        if found:  # what the named document says of it, though it may repeal nothing
            return found
    return []
