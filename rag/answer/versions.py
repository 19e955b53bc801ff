"""Answers from the version in force, with the older text marked where it differs.

Ingest marks every document's version (rag.ingest.versions: `version_date`, `version_label`,
`current`, `superseded_by` in the manifest). Here:

* `VersionedRetriever` keeps superseded passages out of the hits, unless the question asks for
  an older version ("2020年版…", "修订前…", "旧版…"): then that version's passages replace the
  current ones of the same document.
* `answer_in_versions` (the pipeline's one hook) answers the question without the words that
  asked for a version, then
* `annotate_answer` tags each citation with its version, adds, for a cited current passage whose
  older version says it differently, that older sentence as its own marked line
  ("2020年版：…[2]"), and ends the answer with the version it quotes (date, 第X次修正, 现行).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from rag.answer.retrieve import HybridRetriever
from rag.core.settings import Settings
from rag.core.text import normalise, split_sentences
from rag.core.types import Answer, Chunk, Citation, Hit, VersionTag
from rag.index.generations import Index

_VERSION_NOUN = r"(?:版本|版|文本|原文|条例|规定|办法|细则)"
# "2020年版", "2020年的版本", "2010年修订的规定", "2020年修正版".
_YEAR_RE = re.compile(
    rf"(\d{{4}})\s*年\s*(?:的|之)?\s*(?:(?:修正|修订|通过|制定)\s*(?:的|时的|后的)?\s*)?{_VERSION_NOUN}"
)
_PREVIOUS_RE = re.compile(
    r"(?:修订前|修正前|修改前|旧版|老版|原版|上一版|以前的版本|之前的版本|原来的(?:版本|文本)|原来)(?:本)?的?"
)
_DOC_NOUNS = ("条例", "规定", "办法", "细则")
_SOURCE_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
SIMILAR = 0.45  # bigram overlap above which two sentences state the same point
OVERFETCH = 2  # hits fetched per hit kept: the versions of a document share most of their text
MAX_OLDER = 2  # older-text lines added to one answer


@dataclass(frozen=True)
class Request:
    """An older version the question asks for: a year, or simply the one before the current."""

    year: int | None  # None: the previous version
    phrase: str  # the words that asked, cut from the retrieval query


def requested_version(question: str) -> Request | None:
    """The older version a question asks for; `phrase` is the part to cut (a document noun such
    as 条例 that ends the match stays in the question)."""
    m = _YEAR_RE.search(question)
    if m:
        phrase = m.group()
        return Request(int(m.group(1)), phrase[:-2] if phrase.endswith(_DOC_NOUNS) else phrase)
    m = _PREVIOUS_RE.search(question)
    return Request(None, m.group()) if m else None


# The request of the question being answered, for the retriever (set by answer_in_versions).
_REQUEST: ContextVar[Request | None] = ContextVar("version_request", default=None)


@dataclass(frozen=True)
class DocVersion:
    doc_id: str
    title: str
    source: str
    date: str
    label: str
    current: bool
    superseded_by: str
    history: tuple[str, ...]

    @property
    def year(self) -> int | None:
        return int(self.date[:4]) if self.date else None

    @property
    def source_year(self) -> int | None:
        m = _SOURCE_DATE_RE.search(self.source)
        return int(m.group()[:4]) if m else None

    def tag(self, older_text: bool = False) -> VersionTag:
        return VersionTag(self.date, self.label, self.current, self.superseded_by, older_text)

    def name(self) -> str:
        """The version's name: 2024年9月27日第三次修正, or 日期不详."""
        if not self.date:
            return "日期不详"
        y, m, d = (int(x) for x in self.date.split("-"))
        return f"{y}年{m}月{d}日{self.label}"

    def edition(self) -> str:
        """The edition's name: 2020年版, or 此前版本 when undated."""
        return f"{self.year}年版" if self.year else "此前版本"


class VersionIndex:
    """The versions recorded in one generation's manifest, grouped by the current version."""

    def __init__(self, documents: Sequence[Mapping[str, Any]]) -> None:
        self.docs: dict[str, DocVersion] = {}
        for d in documents:
            if not d.get("versioned"):
                continue
            self.docs[d["doc_id"]] = DocVersion(
                doc_id=d["doc_id"],
                title=d.get("title", ""),
                source=d.get("source", ""),
                date=d.get("version_date") or "",
                label=d.get("version_label") or "",
                current=bool(d.get("current", True)),
                superseded_by=d.get("superseded_by") or "",
                history=tuple(d.get("version_history", [])),
            )
        self.groups: dict[str, list[DocVersion]] = {}  # current doc id → its versions, newest first
        for v in self.docs.values():
            head = v.doc_id if v.current else v.superseded_by
            self.groups.setdefault(head, []).append(v)
        for g in self.groups.values():
            g.sort(key=lambda v: (v.current, v.date), reverse=True)
        self.any_superseded = any(not v.current for v in self.docs.values())

    def get(self, doc_id: str) -> DocVersion | None:
        return self.docs.get(doc_id)

    def group(self, doc_id: str) -> list[DocVersion]:
        v = self.docs.get(doc_id)
        if v is None:
            return []
        return self.groups.get(v.doc_id if v.current else v.superseded_by, [v])

    def older(self, doc_id: str) -> list[DocVersion]:
        """The superseded versions of a current document, newest first."""
        return [v for v in self.group(doc_id) if not v.current]

    def wanted(self, doc_id: str, request: Request | None) -> str:
        """The doc id of the version of doc_id's document that answers: the current one, or the
        older one the request names (when the document has it)."""
        group = self.group(doc_id)
        if not group:
            return doc_id
        current = next((v for v in group if v.current), group[0])
        if request is None:
            return current.doc_id
        old = [v for v in group if not v.current]
        if request.year is None:
            return old[0].doc_id if old else current.doc_id
        for pick in (
            lambda v: v.year == request.year,
            lambda v: v.source_year == request.year,
            lambda v: not v.current and any(h.startswith(str(request.year)) for h in v.history),
        ):
            found = [v for v in group if pick(v)]
            if found:
                return found[0].doc_id
        return current.doc_id


class VersionedRetriever(HybridRetriever):
    """Hybrid retrieval that answers from one version per document (see the module docstring)."""

    def __init__(self, index: Index, settings: Settings) -> None:
        super().__init__(index, settings)
        self.versions = VersionIndex(index.documents)

    def retrieve(self, query: str, k: int | None = None, districts: Sequence[str] | None = None) -> list[Hit]:
        if not self.versions.any_superseded:
            return super().retrieve(query, k, districts)
        k = k or self.settings.top_k
        request = _REQUEST.get() or requested_version(query)
        hits = super().retrieve(query, k * OVERFETCH, districts)
        kept = [h for h in hits if self.versions.wanted(h.chunk.doc_id, request) == h.chunk.doc_id][:k]
        top = kept[0].score if kept else 1.0
        return [replace(h, score=h.score / top) for h in kept]


# ---------------------------------------------------------------------------- answers


def _bigrams(text: str) -> set[str]:
    t = normalise(text)
    return {t[i : i + 2] for i in range(len(t) - 1)} or {t}


def _similarity(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def older_counterpart(quote: str, chunks: Sequence[Chunk]) -> tuple[Chunk, str] | None:
    """The passage of an older version that states the quote's point, and its sentences there,
    when they differ from the quote; None when the older text says the same or has no match."""
    candidates = [(c, s, _bigrams(s)) for c in chunks for s in split_sentences(c.text, drop_blank=True)]
    if not candidates:
        return None
    found: dict[str, list[tuple[int, str]]] = {}
    chunk_of: dict[str, Chunk] = {}
    differs = False
    for sentence in split_sentences(quote.replace("……", "\n"), drop_blank=True):
        grams = _bigrams(sentence)
        sim, c, best = max(((_similarity(grams, g), c, s) for c, s, g in candidates), key=lambda x: x[0])
        if sim < SIMILAR:
            continue
        differs = differs or normalise(best) != normalise(sentence)
        pos = c.text.find(best)
        found.setdefault(c.id, [])
        if best not in (s for _, s in found[c.id]):
            found[c.id].append((pos, best))
        chunk_of[c.id] = c
    if not differs or not found:
        return None
    cid = max(found, key=lambda i: len(found[i]))
    return chunk_of[cid], "".join(s for _, s in sorted(found[cid]))


def answer_in_versions(
    question: str,
    run: Callable[[str], Answer],
    versions: VersionIndex,
    by_doc: Mapping[str, Sequence[Chunk]],
) -> Answer:
    """`run` answers the question without the words that ask for a version (they would only
    match dates), its retriever keeping to the version asked for; then annotate_answer."""
    request = requested_version(question) if versions.any_superseded else None
    asked = question.replace(request.phrase, "", 1).strip() if request else question
    token = _REQUEST.set(request)
    try:
        answer = run(asked or question)
    finally:
        _REQUEST.reset(token)
    answer = annotate_answer(answer, request, versions, by_doc)
    return replace(answer, question=question) if request else answer


def annotate_answer(
    answer: Answer, request: Request | None, versions: VersionIndex, by_doc: Mapping[str, Sequence[Chunk]]
) -> Answer:
    """Tag citations with their version, add differing older text (unless an older version was
    asked for), and name the version quoted."""
    if answer.abstained or not answer.citations or not versions.docs:
        return answer
    if not any(versions.get(c.chunk.doc_id) for c in answer.citations):
        return answer
    citations: list[Citation] = []
    for c in answer.citations:
        v = versions.get(c.chunk.doc_id)
        citations.append(replace(c, version=v.tag()) if v else c)
    lines = [answer.answer]
    if request is None:
        lines += _older_lines(citations, versions, by_doc)
    lines += _version_lines(citations, versions)
    extra = {**answer.extra}
    if request is not None:
        extra["version_requested"] = request.phrase
    return replace(answer, answer="\n".join(lines), citations=tuple(citations), extra=extra)


def _older_lines(citations: list[Citation], versions: VersionIndex, by_doc: Mapping[str, Sequence[Chunk]]) -> list[str]:
    """Lines "2020年版（旧文本，已被修改）：<older sentence>[n]" for cited current passages whose older text differs
    (appends the older passages to `citations`)."""
    lines: list[str] = []
    for c in list(citations):
        if len(lines) >= MAX_OLDER:
            break
        v = versions.get(c.chunk.doc_id)
        if v is None or not v.current or c.version is None or c.version.older_text:
            continue
        for old in versions.older(v.doc_id)[:1]:
            match = older_counterpart(c.quote, by_doc.get(old.doc_id, ()))
            if match is None:
                continue
            chunk, text = match
            n = len(citations) + 1
            citations.append(Citation(n, chunk, text, c.score, old.tag(older_text=True)))
            lines.append(f"{old.edition()}（旧文本，已被修改）：{text}[{n}]")
    return lines


def _version_lines(citations: list[Citation], versions: VersionIndex) -> list[str]:
    """One line per cited document version: title, date and 第X次修正, and whether it is in force."""
    lines: list[str] = []
    seen: set[str] = set()
    for c in citations:
        v = versions.get(c.chunk.doc_id)
        if v is None or v.doc_id in seen:
            continue
        seen.add(v.doc_id)
        if v.current:
            lines.append(f"（版本：《{v.title}》{v.name()}，现行有效）")
        else:
            now = versions.get(v.superseded_by)
            later = f"，现行版本为{now.name()}" if now else ""
            lines.append(f"（版本：《{v.title}》{v.edition()}，{v.name()}，已被取代{later}）")
    return lines


__all__ = [
    "DocVersion",
    "Request",
    "VersionIndex",
    "VersionedRetriever",
    "annotate_answer",
    "answer_in_versions",
    "older_counterpart",
    "requested_version",
]
