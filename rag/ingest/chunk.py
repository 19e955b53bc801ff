"""Section tree and chunks of normalised Chinese official documents.

Heading levels (a heading always starts a paragraph):

    第一编 › 第一章 › 第一节 › 第一条                 (regulations)
    一、 / 附录… › （一） › 1． / 1. / 1、 › （1）       (plans, notices, decisions)

Paths use the headings as they appear in the body; half-width "(三)" is folded to "（三）".

Design choices:
* A numbered item with a sentence after its marker ("18. 落实行政复议体制改革。在……") is a
  heading *and* content: its short title ("18. 落实行政复议体制改革") ends the path and the
  whole paragraph, title sentence included, is chunk text. A heading without a sentence
  ("（一）成效回顾") only names the path.
* A regulation article is the last path element: ("第二章 专利管理", "第九条"); the text keeps
  "第九条 …" and the article's later paragraphs (款, （一） lists) stay in its path.
* Text before the first heading is the preamble, path ("前言",). A notice that forwards the
  document (…的通知 before the document's own title) gets the notice title as its path.
* Chunks never cross a path change. Consecutive paragraphs with one path are merged up to
  max_chars; a longer paragraph is split at sentence ends only, so a single sentence longer
  than max_chars stays whole.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from itertools import groupby

from rag.core.text import split_sentences
from rag.core.types import Chunk, Document
from rag.ingest.metadata import FrontMatter, find_front_matter
from rag.ingest.paragraphs import APPENDIX_RE, CN_NUM

PREAMBLE = "前言"
ARTICLE_RANK = 9
_MAX_LABEL = 40  # longest short title kept in a path

# (rank, pattern, needs_no_sentence, enumeration). Chapter-like headings are headings only
# when they hold no sentence, so "第三章规定的……。" in running text is not one.
# Enumerations inside an article are the article's lists, not headings.
_N = CN_NUM
_HEADINGS: tuple[tuple[int, re.Pattern[str], bool, bool], ...] = (
    (0, re.compile(rf"^第[{_N}\d]+编"), True, False),
    (1, re.compile(rf"^第[{_N}\d]+章"), True, False),
    (2, re.compile(rf"^第[{_N}\d]+节"), True, False),
    (ARTICLE_RANK, re.compile(rf"^第[{_N}\d]+条(?:之[{_N}]+)?(?=\s)"), False, False),
    (1, APPENDIX_RE, True, False),
    (1, re.compile(rf"^[{_N}]+、"), False, True),
    (2, re.compile(rf"^[（(][{_N}]+[）)]"), False, True),
    (3, re.compile(r"^\d{1,3}(?:[.．](?!\s*\d)|、)"), False, True),
    (4, re.compile(r"^[（(]\d{1,3}[）)]"), False, True),
)
_TITLE_END_RE = re.compile(r"[。；：！？;:!?]")


@dataclass(frozen=True)
class Heading:
    rank: int
    label: str
    pure: bool  # a heading only, no content of its own


def classify(paragraph: str, in_article: bool = False) -> Heading | None:
    """The heading a paragraph starts with, or None for a plain paragraph."""
    for rank, pattern, needs_pure, enumeration in _HEADINGS:
        m = pattern.match(paragraph)
        if not m:
            continue
        pure = len(paragraph) <= 60 and not _TITLE_END_RE.search(paragraph[m.end() :])
        if needs_pure and not pure:
            continue
        if in_article and enumeration:
            return None
        if rank == ARTICLE_RANK:
            return Heading(rank, m.group(), pure=False)
        return Heading(rank, _label(paragraph, m.end(), pure), pure)
    return None


def strip_marker(label: str) -> str:
    """A path label without its heading marker: "（二）基本原则" → "基本原则", "第五条" → ""."""
    for _rank, pattern, _pure, _enum in _HEADINGS:
        m = pattern.match(label + " ")  # an article's label is its bare marker ("第五条")
        if m:
            return label[m.end() :].strip()
    return label.strip()


def _label(paragraph: str, marker_end: int, pure: bool) -> str:
    """The heading part of a paragraph: all of a pure heading, else up to the first 。/："""
    rest = paragraph[marker_end:]
    head = paragraph if pure else paragraph[:marker_end] + _TITLE_END_RE.split(rest, maxsplit=1)[0]
    head = head.strip()
    if len(head) > _MAX_LABEL:
        cut = head.find("，")
        head = head[:cut] if 0 < cut <= _MAX_LABEL else head[:_MAX_LABEL] + "…"
    # The body mixes "(三) " and "（三）"; paths use the full-width form.
    return re.sub(r"^\(([^)]{1,4})\)\s*", r"（\1）", head)


def parse_sections(text: str) -> list[tuple[tuple[str, ...], str]]:
    """(section path, paragraph) for every content paragraph of normalised text.

    Pure headings and document titles are not returned: they live in the paths.
    """
    paragraphs = [p for p in text.split("\n") if p]
    front = find_front_matter(paragraphs)
    out: list[tuple[tuple[str, ...], str]] = []
    stack: list[Heading] = []
    for i, para in enumerate(paragraphs):
        if i < front.end:
            path = _front_path(paragraphs, front, i)
            if path is not None:
                out.append((path, para))
            continue
        in_article = bool(stack) and stack[-1].rank == ARTICLE_RANK
        heading = classify(para, in_article)
        if heading is not None:
            while stack and stack[-1].rank >= heading.rank:
                stack.pop()
            stack.append(heading)
            if heading.pure:
                continue
        path = tuple(h.label for h in stack) or (PREAMBLE,)
        out.append((path, para))
    return out


def _front_path(paragraphs: list[str], front: FrontMatter, i: int) -> tuple[str, ...] | None:
    """Path of a front-matter paragraph; None for the titles themselves."""
    if i in front.titles:
        return None
    if front.notice_title is not None and i < (front.main_title or 0):
        return (paragraphs[front.notice_title],)
    return (PREAMBLE,)


def chunk_document(doc: Document, max_chars: int = 400) -> list[Chunk]:
    """Chunks of one document: numbered items or paragraphs under their deepest heading."""
    chunks: list[Chunk] = []
    for path, group in groupby(parse_sections(doc.text), key=lambda pair: pair[0]):
        for text in pack_paragraphs([para for _, para in group], max_chars):
            chunks.append(Chunk.make(doc, text, path, len(chunks)))
    info = info_text(doc)
    if info:
        chunks.append(Chunk.make(doc, info, (INFO_SECTION,), len(chunks)))
    return chunks


INFO_SECTION = "文件信息"
# Bumped when chunking changes what a document yields: ingest then re-chunks unchanged files
# (their unchanged chunks' vectors still come from the embedding cache).
CHUNKER_VERSION = "5"
_FORWARD = re.compile(r"关于转发(\S{2,20}?)《[^》]{2,60}》的通知")
# The salutation line under a notice's title: "区政府各委、办、局，各街道办事处、彭浦镇政府："
_RECIPIENTS = re.compile(r"的通知\s*\n\s*([^\n：:。]{4,80}?)[：:]\s*\n")


def info_text(doc: Document) -> str:
    """A passage stating the document's metadata (read from its own letterhead), so that
    "文号是什么 / 哪个机关印发 / 什么时候印发" can be answered and cited like any other fact."""
    parts: list[str] = []
    head = doc.text[:600]
    forwarded = _FORWARD.search(head)
    if doc.issuer and forwarded:
        parts.append(f"发文机关（印发机关）：{doc.issuer}（以《{forwarded.group(0)}》印发）。")
    elif doc.issuer:
        parts.append(f"发文机关（印发、编制单位）：{doc.issuer}。")
    if forwarded:
        # "关于转发区司法局《…规划》的通知": the plan was drafted by 区司法局 and forwarded by the issuer.
        parts.append(f"起草（编制）单位：{forwarded.group(1)}。")
    recipients = _RECIPIENTS.search(head)
    if recipients:
        notice = "转发通知" if forwarded else "通知"
        parts.append(f"{notice}的主送单位（主送机关）：{recipients.group(1)}。")
    if doc.doc_number:
        parts.append(f"文号（发文字号）：{doc.doc_number}。")
    if doc.date:
        y, m, d = (int(x) for x in doc.date.split("-"))
        parts.append(f"印发日期（成文日期）：{y}年{m}月{d}日。")
    return f"《{doc.title}》文件信息：" + "".join(parts) if parts else ""


def pack_paragraphs(paragraphs: list[str], max_chars: int) -> list[str]:
    """Merge consecutive paragraphs up to max_chars; split longer ones at sentence ends."""
    out: list[str] = []
    buf = ""
    for para in paragraphs:
        if buf and len(buf) + 1 + len(para) <= max_chars:
            buf += "\n" + para
            continue
        if buf:
            out.append(buf)
        pieces = split_long(para, max_chars)
        out.extend(pieces[:-1])
        buf = pieces[-1]  # the tail may still take the next short paragraph
    if buf:
        out.append(buf)
    return out


def split_long(para: str, max_chars: int) -> list[str]:
    """Split at sentence ends into pieces of similar size, none over max_chars unless a
    single sentence is."""
    if len(para) <= max_chars:
        return [para]
    target = len(para) / math.ceil(len(para) / max_chars)
    pieces: list[str] = []
    cur = ""
    for sentence in split_sentences(para):
        if cur and (len(cur) + len(sentence) > max_chars or len(cur) >= target):
            pieces.append(cur)
            cur = ""
        cur += sentence
    if cur:
        pieces.append(cur)
    return pieces
