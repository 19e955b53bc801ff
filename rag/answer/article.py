"""An article the question names by number: "北京市中医药条例第十条规定了什么？" is answered from that
article of that document, whatever other articles match its words. Asked generically (规定了什么,
怎么说的, 内容是什么) the answer is the article itself; asked for a fact, the fact is chosen among
the article's sentences only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answer.effective import named_hits
from rag.answer.score import Scored
from rag.core.text import split_sentences
from rag.core.types import Chunk, Hit
from rag.query.question import Question

_DIGITS = "零一二三四五六七八九"
ARTICLE_Q = re.compile(r"第([零〇一二两三四五六七八九十百\d]{1,6})条")
# The whole article is wanted, not a fact inside it.
GENERIC_Q = re.compile(
    r"(?:规定|讲|说|写)了?(?:些)?(?:什么|啥)|(?:怎么|如何)(?:规定|说|讲|写)|(?:的|主要)?内容(?:是什么|是啥|有哪些)?[？?]?$"
)
_ARTICLE = re.compile(r"^第[零一二三四五六七八九十百]+条$")
MAX_SENTENCES = 8  # an article quoted whole, within the length budget


def chinese_number(n: int) -> str:
    """15 → 十五, 20 → 二十, 105 → 一百零五: how article numbers are written."""
    if n < 10:
        return _DIGITS[n]
    if n < 20:
        return "十" + (_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _DIGITS[n // 10] + "十" + (_DIGITS[n % 10] if n % 10 else "")
    rest = n % 100
    tail = (
        "" if rest == 0 else ("零" + _DIGITS[rest] if rest < 10 else ("一" if rest < 20 else "") + chinese_number(rest))
    )
    return _DIGITS[n // 100] + "百" + tail


def _named_article(normalised: str) -> str | None:
    m = ARTICLE_Q.search(normalised)
    if not m:
        return None
    num = m.group(1).replace("两", "二").replace("〇", "零")
    return f"第{chinese_number(int(num)) if num.isdigit() else num}条"


def article_chunks(q: Question, hits: Sequence[Hit], by_doc: dict[str, list[Chunk]]) -> tuple[Hit, list[Chunk]] | None:
    """The best hit of the document the question names, and the chunks of the article it names."""
    name = _named_article(q.normalised)
    if name is None:
        return None
    named = named_hits(q, hits)
    if not named:
        return None
    hit = named[0]
    chunks = [c for c in by_doc.get(hit.chunk.doc_id, []) if c.section_path and c.section_path[-1] == name]
    return (hit, chunks) if chunks else None


def article_missing(q: Question, hits: Sequence[Hit], by_doc: dict[str, list[Chunk]]) -> bool:
    """The question names an article the named document, written in articles, does not have
    (第九十条 of a regulation of sixty): no other article may stand in for it."""
    name = _named_article(q.normalised)
    if name is None:
        return False
    named = named_hits(q, hits)
    heads = {c.section_path[-1] for h in named for c in by_doc.get(h.chunk.doc_id, []) if c.section_path}
    return bool(named) and name not in heads and any(_ARTICLE.match(h) for h in heads)  # in no version


def article_quote(q: Question, hits: Sequence[Hit], by_doc: dict[str, list[Chunk]]) -> list[Scored]:
    """The named article quoted whole, when the question asks for it generically."""
    found = article_chunks(q, hits, by_doc) if GENERIC_Q.search(q.normalised) else None
    if found is None:
        return []
    hit, chunks = found
    quoted = [
        Scored(Hit(c, hit.score, hit.ranks), s.strip(), pos, hit.score, 1.0)
        for c in chunks
        for pos, s in enumerate(split_sentences(c.text, drop_blank=True))
    ]
    return quoted[:MAX_SENTENCES]


def article_hits(q: Question, hits: Sequence[Hit], by_doc: dict[str, list[Chunk]]) -> list[Hit]:
    """The hits to add when the question names an article: that article, and the articles of the
    same document that cite it ("违反本条例第二十条规定的，处…罚款"). Added, not alone: a question
    written from another version may number its articles differently."""
    found = article_chunks(q, hits, by_doc)
    if found is None:
        return []
    hit, chunks = found
    name = chunks[0].section_path[-1]
    citing = [c for c in by_doc.get(hit.chunk.doc_id, []) if c not in chunks and name in c.text]
    return [Hit(c, hit.score, hit.ranks) for c in [*chunks, *citing]]
