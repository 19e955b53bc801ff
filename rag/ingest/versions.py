"""Versions of one document: the same title and issuer, different dates or amendment history.

A regulation's front matter records its history, one step per line:

    2020年4月10日上海市第十五届人民代表大会常务委员会第二十次会议通过
    2021年10月28日……《关于修改〈上海市优化营商环境条例〉的决定》第一次修正
    2024年9月27日……第三次修正）

The last step dates the version and names it (第三次修正, 修订, 通过). Files holding the same
document (title normalised, a trailing version or date note such as "（2020年修正）" or
"(2020-04-10)" ignored; also any title the history's 关于修改〈…〉的决定 names) from the same
place and issuer are one group; the latest is current, the others are superseded and point to it.

At ingest `apply_versions` writes these fields into every document's manifest entry:
`version_key`, `version_titles`, `version_date`, `version_label`, `version_history`,
`versioned` (the document has a history or siblings), `current`, `superseded_by` (doc id or ""),
`supersedes` (doc ids, newest first), and, with keep_superseded=False, drops the superseded ones.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, MutableMapping, MutableSet, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.core.text import CJK
from rag.core.types import Chunk, Document
from rag.ingest.load import load_document
from rag.ingest.metadata import find_front_matter
from rag.ingest.paragraphs import CN_NUM

_DATE = r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日"
# One step of the history: a date, then (within the line) what happened.
STEP_RE = re.compile(
    rf"{_DATE}(?P<body>[^\n]*?)(?P<act>第[{CN_NUM}\d]+次修正|第[{CN_NUM}\d]+次修订|修正|修订|通过|批准)"
)
_AMENDED_TITLE_RE = re.compile(r"关于修改[〈<《]([^〉>》]{2,60})[〉>》]的决定")
# A trailing version or date note on a title: （2020年修正）, (2020-04-10), 【2024年版】, 2020年修订本.
_TRAILING_NOTE_RE = re.compile(
    r"(?:[（(【\[［〔][^（()）【】\[\]［］〔〕]{0,24}[）)】\]］〕]"
    r"|\d{4}\s*年?\s*(?:版|修正本|修订本|修正|修订|文本)?"
    r"|\d{4}-\d{1,2}-\d{1,2})\s*$"
)
_NOTE_WORDS_RE = re.compile(r"\d|年|版|修正|修订|草案|试行|暂行本|文本")
_PERIOD_RE = re.compile(r"\d{4}\s*年?\s*[-—–~～至到]\s*\d{4}")
_PUNCT_RE = re.compile(r"[\s《》〈〉“”\"'·・]")
UNKNOWN_DATE = ""


@dataclass(frozen=True)
class Step:
    """One line of the amendment history."""

    date: str  # ISO yyyy-mm-dd
    act: str  # 通过 | 修订 | 修正 | 第二次修正 …

    @property
    def text(self) -> str:
        return f"{self.date} {self.act}"


@dataclass(frozen=True)
class VersionInfo:
    """What identifies a document across versions, and which version this file is."""

    key: str  # normalised title | place | issuer
    titles: tuple[str, ...]  # normalised titles it is known by (its own, and those its history names)
    place: str
    issuer: str
    date: str  # the version's date (ISO), UNKNOWN_DATE when the file gives none
    label: str  # the last step: 第三次修正 / 修订 / 通过, "" when there is no history
    history: tuple[Step, ...]

    @property
    def versioned(self) -> bool:
        """Amended at least once (a document that was only passed has one version)."""
        return any("修" in s.act for s in self.history)


def normalise_title(title: str) -> str:
    """The title without spaces, book-title marks and trailing version/date notes."""
    t = unicodedata.normalize("NFKC", title)
    t = _PUNCT_RE.sub("", t)
    while True:
        m = _TRAILING_NOTE_RE.search(t)
        if not m or m.start() == 0:
            break
        note = m.group()
        # A bracket is only a note when it reads as one ("（2020年修正）"), not "（试点）区"; a
        # period ("（2021-2025年）") names another plan, not another version of this one.
        if note[0] in "（(【[［〔" and not _NOTE_WORDS_RE.search(note):
            break
        if _PERIOD_RE.search(t[max(0, m.start() - 12) : m.end()]):
            break
        t = t[: m.start()]
    return t


def history(text: str) -> tuple[Step, ...]:
    """The dated steps of the front matter (before the first heading), oldest first."""
    paragraphs = text.split("\n")
    front = find_front_matter(paragraphs)
    steps: list[Step] = []
    for p in paragraphs[: front.end]:
        if len(p) > 400:
            continue  # a preamble paragraph, not a history line
        for m in STEP_RE.finditer(p):
            y, mo, d = (int(g) for g in m.groups()[:3])
            steps.append(Step(f"{y:04d}-{mo:02d}-{d:02d}", m.group("act")))
    return tuple(sorted(dict.fromkeys(steps), key=lambda s: s.date))


def amended_titles(text: str) -> tuple[str, ...]:
    """Titles named by the history's 关于修改〈…〉的决定 (they may spell the title better)."""
    paragraphs = text.split("\n")
    front = find_front_matter(paragraphs)
    found = (m.group(1) for p in paragraphs[: front.end] for m in _AMENDED_TITLE_RE.finditer(p))
    return tuple(dict.fromkeys(normalise_title(t) for t in found))


def _place_of(district: str | None) -> str:
    return district or ""


def _issuer_of(issuer: str | None) -> str:
    return _PUNCT_RE.sub("", unicodedata.normalize("NFKC", issuer or ""))


def version_info(doc: Document) -> VersionInfo:
    """The version of one loaded document."""
    steps = history(doc.text)
    title = normalise_title(doc.title)
    titles = tuple(dict.fromkeys((title, *amended_titles(doc.text))))
    # A title that names no document ("DEV_1000" from a file name, "通知") says nothing about
    # versions: numbered files of one collection are not versions of each other.
    if len(CJK.findall(title)) < 4:
        titles = tuple(t for t in titles[1:] if len(CJK.findall(t)) >= 4)
    date = steps[-1].date if steps else (doc.date or UNKNOWN_DATE)
    return VersionInfo(
        key=f"{title}|{_place_of(doc.district)}|{_issuer_of(doc.issuer)}",
        titles=titles,
        place=_place_of(doc.district),
        issuer=_issuer_of(doc.issuer),
        date=date,
        label=steps[-1].act if steps else "",
        history=steps,
    )


def _entry_info(entry: Mapping[str, Any]) -> VersionInfo:
    """The version of a document already in the manifest: from its stored fields, else from its
    file (an index built before versions were recorded), else from title and date alone."""
    if "version_key" in entry:
        steps = tuple(Step(*s.split(" ", 1)) for s in entry.get("version_history", []))
        return VersionInfo(
            key=entry["version_key"],
            titles=tuple(entry.get("version_titles", [])),
            place=entry.get("district") or "",
            issuer=_issuer_of(entry.get("issuer")),
            date=entry.get("version_date", ""),
            label=entry.get("version_label", ""),
            history=steps,
        )
    path = Path(str(entry.get("path", "")))
    if path.is_file():
        try:
            return version_info(load_document(path))
        except (OSError, ValueError):
            pass
    title = normalise_title(str(entry.get("title", "")))
    issuer = _issuer_of(entry.get("issuer"))
    place = entry.get("district") or ""
    return VersionInfo(f"{title}|{place}|{issuer}", (title,), place, issuer, entry.get("date") or "", "", ())


def _same_document(a: VersionInfo, b: VersionInfo) -> bool:
    """One title in common, the same place, and the same issuer where both name one."""
    if a.place != b.place or not set(a.titles) & set(b.titles):
        return False
    return not (a.issuer and b.issuer and a.issuer != b.issuer)


def _rank(info: VersionInfo) -> tuple[str, int]:
    """Later date first; an undated file counts as older than any dated one."""
    return (info.date, len(info.history))


def group_versions(infos: Mapping[str, VersionInfo]) -> list[list[str]]:
    """Doc ids of each group of two or more versions, newest first (ties keep id order)."""
    ids = sorted(infos)
    parent = {i: i for i in ids}

    def find(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for n, a in enumerate(ids):
        for b in ids[n + 1 :]:
            if _same_document(infos[a], infos[b]):
                parent[find(b)] = find(a)
    groups: dict[str, list[str]] = {}
    for i in ids:
        groups.setdefault(find(i), []).append(i)
    out = [sorted(g, key=lambda i: _rank(infos[i]), reverse=True) for g in groups.values() if len(g) > 1]
    return sorted(out, key=lambda g: infos[g[0]].titles[0])


def current_of(group: Sequence[str], infos: Mapping[str, VersionInfo]) -> list[str]:
    """The current versions of a group (newest first): the newest, and any tied with it
    (the same date and history length: nothing says which is later)."""
    top = _rank(infos[group[0]])
    return [i for i in group if _rank(infos[i]) == top]


def version_fields(
    info: VersionInfo, *, siblings: bool, current: bool, superseded_by: str, supersedes: list[str]
) -> dict[str, Any]:
    return {
        "version_key": info.key,
        "version_titles": list(info.titles),
        "version_date": info.date,
        "version_label": info.label,
        "version_history": [s.text for s in info.history],
        "versioned": info.versioned or siblings,
        "current": current,
        "superseded_by": superseded_by,
        "supersedes": supersedes,
    }


def annotate(docs: MutableMapping[str, dict[str, Any]], added: Iterable[Document]) -> list[list[str]]:
    """Write the version fields into every manifest entry in `docs`; return the groups."""
    fresh = {d.id: version_info(d) for d in added if d.id in docs}
    infos = {i: fresh.get(i) or _entry_info(e) for i, e in docs.items()}
    groups = group_versions(infos)
    in_group = {i: g for g in groups for i in g}
    for i, entry in docs.items():
        g = in_group.get(i)
        if g is None:
            entry.update(version_fields(infos[i], siblings=False, current=True, superseded_by="", supersedes=[]))
            continue
        heads = current_of(g, infos)
        is_current = i in heads
        older = [j for j in g if j not in heads] if is_current else []
        entry.update(
            version_fields(
                infos[i],
                siblings=True,
                current=is_current,
                superseded_by="" if is_current else heads[0],
                supersedes=older,
            )
        )
    return groups


def apply_versions(
    docs: MutableMapping[str, dict[str, Any]],
    to_add: Sequence[tuple[Path, Document]],
    new_chunks: list[Chunk],
    to_remove: MutableSet[str],
    keep_superseded: bool,
    warnings: list[str],
) -> list[Chunk]:
    """The build's one call: annotate `docs` (the next generation's manifest entries); without
    keep_superseded drop superseded documents (old ones into `to_remove`, new ones out of
    `docs`). Returns the new chunks to index."""
    annotate(docs, (d for _, d in to_add))
    if keep_superseded:
        return new_chunks
    doomed = {i for i, e in docs.items() if not e["current"]}
    for i in sorted(doomed):
        e = docs.pop(i)
        by = docs[e["superseded_by"]]
        warnings.append(
            f"{e['source']}: 已被新版本 {by['source']} 取代，未保留 (RAG_KEEP_SUPERSEDED=false) "
            f"(superseded by {by['source']}; dropped)"
        )
        to_remove.add(i)
        by["supersedes"] = [j for j in by["supersedes"] if j != i]
    return [c for c in new_chunks if c.doc_id not in doomed]


def describe(entry: Mapping[str, Any], documents: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The version of a manifest entry, "2024-09-27 第三次修正 · 现行 current", or "… · 已被取代 superseded by
    <file of the current version>" ("" when the entry records no version)."""
    if not entry.get("versioned"):
        return ""
    parts = [entry.get("version_date") or "日期不详 undated", entry.get("version_label") or ""]
    if entry.get("current", True):
        status = "现行 current"
    else:
        by = entry.get("superseded_by", "")
        status = f"已被取代 superseded by {(documents or {}).get(by, {}).get('source') or by}"
    return " ".join(p for p in parts if p) + " · " + status


__all__ = [
    "Step",
    "VersionInfo",
    "amended_titles",
    "annotate",
    "apply_versions",
    "describe",
    "group_versions",
    "history",
    "normalise_title",
    "version_info",
]
