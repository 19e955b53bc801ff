"""Frozen records that flow through the pipeline: Document → Chunk → Hit → Citation → Answer.

Ids are content hashes, so re-ingesting the same text yields the same ids (idempotent ingest).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

SECTION_SEP = " › "


def content_hash(*parts: str, length: int = 16) -> str:
    """Stable short hex id of the given strings."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:length]


@dataclass(frozen=True)
class Document:
    """One ingested file after normalisation."""

    id: str  # content hash of the normalised text
    source: str  # file name it was ingested from
    title: str
    text: str  # normalised text, paragraphs separated by "\n"
    kind: str = "plan"  # plan | regulation | other
    district: str | None = None  # e.g. 金山区; the area the document governs
    issuer: str | None = None
    doc_number: str | None = None  # e.g. 静府办发〔2021〕11号
    date: str | None = None  # ISO yyyy-mm-dd where known

    def meta(self) -> dict[str, str]:
        """Flat metadata (no None values) for stores that only take scalars."""
        out = {
            "doc_id": self.id,
            "source": self.source,
            "title": self.title,
            "kind": self.kind,
            "district": self.district or "",
            "issuer": self.issuer or "",
            "doc_number": self.doc_number or "",
            "date": self.date or "",
        }
        return out


@dataclass(frozen=True)
class Chunk:
    """A numbered item or paragraph under its deepest heading."""

    id: str
    doc_id: str
    text: str  # the clean passage a citation shows
    section_path: tuple[str, ...]  # headings from the top, e.g. ("三、主要任务", "（五）…", "18. …")
    order: int  # position in the document
    title: str = ""
    district: str | None = None
    source: str = ""

    @property
    def section(self) -> str:
        return SECTION_SEP.join(self.section_path)

    @property
    def embed_text(self) -> str:
        """What is embedded and BM25-indexed: title and section path as a header, then the text.

        The plans repeat phrases across districts; the header is what tells them apart.
        """
        header = f"《{self.title}》" if self.title else ""
        if self.section_path:
            header += " " + self.section
        return f"{header}\n{self.text}" if header else self.text

    @staticmethod
    def make(doc: Document, text: str, section_path: tuple[str, ...], order: int) -> Chunk:
        return Chunk(
            id=content_hash(doc.id, str(order), text),
            doc_id=doc.id,
            text=text,
            section_path=section_path,
            order=order,
            title=doc.title,
            district=doc.district,
            source=doc.source,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "doc_id": self.doc_id,
            "text": self.text,
            "section_path": list(self.section_path),
            "order": self.order,
            "title": self.title,
            "district": self.district,
            "source": self.source,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> Chunk:
        return Chunk(
            id=d["id"],
            doc_id=d["doc_id"],
            text=d["text"],
            section_path=tuple(d["section_path"]),
            order=int(d["order"]),
            title=d.get("title", ""),
            district=d.get("district"),
            source=d.get("source", ""),
        )


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score (higher is better)."""

    chunk: Chunk
    score: float
    ranks: dict[str, float] = field(default_factory=dict, compare=False)  # per retriever: rank (0-based), dense_sim


@dataclass(frozen=True)
class VersionTag:
    """Which version of its document a cited passage comes from (see rag.ingest.versions)."""

    date: str  # ISO date of the version ("" when the file gives none)
    label: str  # its last step: 第三次修正 / 修订 / 通过 ("" when unknown)
    current: bool  # the version in force
    superseded_by: str = ""  # doc id of the current version, when this one is superseded
    older_text: bool = False  # quoted as the older text beside the current one ("2020年版：…")


@dataclass(frozen=True)
class Citation:
    n: int
    chunk: Chunk
    quote: str  # supporting sentence(s) inside chunk.text
    score: float
    version: VersionTag | None = None  # set for documents that come in versions or were amended


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...]
    retrieved: tuple[Hit, ...]
    timings_ms: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
