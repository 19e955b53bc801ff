"""Document-level metadata read from normalised text (see rag.ingest.paragraphs).

Everything is found by generic rules over the front matter (the paragraphs before the first
structural heading): a title ends in a document-type word, an issuer is a short
organisation name, a doc number looks like 静府办发〔2021〕11号, and so on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rag.core.places import gazetteer
from rag.ingest.paragraphs import CN_NUM, MARKER_RE

_CN_CHAR = r"[\u4e00-\u9fff]"
# Document-type words that end a title; 通知 and friends also wrap other documents.
_DOC_TYPE_RE = re.compile(
    r"(规划|计划|纲要|方案|意见|办法|条例|规定|决定|决议|细则|规则|章程|报告|要点|指引|指南"
    r"|通知|通报|通告|公告|批复|函)$"
)
_FORWARDING_RE = re.compile(r"(通知|通报|批复|函)$")
_PLAN_RE = re.compile(r"(规划|计划|纲要|方案|要点)$")
_REGULATION_RE = re.compile(r"(条例|规定|办法|决定|决议|细则|规则|章程)$")
_INTERPRETATION_RE = re.compile(r"解读|答记者问|政策问答|一图读懂|释义")
_QA_RE = re.compile(r"^(?:问|Q)\s*\d*\s*[:：、.]|^\d+[.、]\s*\S{2,40}[？?]$")
_NOTICE_RE = re.compile(r"(通知|通告|公告|通报|公示|启事)$")
_NEWS_RE = re.compile(r"^(?:本报讯|新华社|中新网|人民网|（记者|记者)|^\d{1,2}月\d{1,2}日[，,]|^近日[，,]|^日前[，,]")
_TITLE_STOPS = set("，。；：！？,;:!?")
_ORG_RE = re.compile(r"(人民政府|办公室|办公厅|委员会|领导小组|人民法院|人民检察院|政府|局|厅|委|办|院|中心)$")
_ARTICLE_RE = re.compile(rf"^第[{CN_NUM}]+条(?:之[{CN_NUM}]+)?\s")
# "上海市第十五届人民代表大会常务委员会第二十一次会议通过" → the body that passed it.
_SESSION_RE = re.compile(rf"({_CN_CHAR}{{2,12}}?)第[{CN_NUM}]+届({_CN_CHAR}{{2,20}}?)第[{CN_NUM}]+次(?:全体)?会议")
_DOC_NUMBER_RE = re.compile(rf"{_CN_CHAR}{{1,10}}[〔［\[（(]\d{{4}}[〕］\]）)]第?\d{{1,4}}号")
_DATE_RE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")
_SOURCE_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ENACTED_RE = re.compile(r"通过|修正|修订|公布|发布|印发|施行")


@dataclass(frozen=True)
class DocMeta:
    title: str
    kind: str  # plan | regulation | other
    district: str | None = None  # the area the document governs, e.g. 金山区 / 上海市
    issuer: str | None = None
    doc_number: str | None = None  # e.g. 静府办发〔2021〕11号
    date: str | None = None  # ISO yyyy-mm-dd


@dataclass(frozen=True)
class FrontMatter:
    """Where the title and an optional forwarding notice sit among the paragraphs."""

    end: int  # index of the first structural heading (or len(paragraphs))
    titles: tuple[int, ...]  # indices of title paragraphs inside the front matter
    main_title: int | None  # the document's own title
    notice_title: int | None  # title of a notice that forwards the document, if any


def extract_metadata(text: str, source: str) -> DocMeta:
    """Title, kind, district, issuer, doc number and date of one normalised document."""
    paragraphs = text.split("\n")
    front = find_front_matter(paragraphs)
    head = paragraphs[: front.end]
    title = _title(paragraphs, front, source)
    issuer = _issuer(head)
    return DocMeta(
        title=title,
        kind=_kind(title, paragraphs),
        district=_area(title)
        or (_area(issuer) if issuer else None)
        or _area_of_lines(head)
        or _area_named(paragraphs[:4]),
        issuer=issuer,
        doc_number=_doc_number(head),
        date=_date(head, paragraphs) or _source_date(source),
    )


# ----------------------------------------------------------------------- front matter


def is_structural_heading(paragraph: str) -> bool:
    """The first of these ends the front matter: 一、 / 第一章 / 第一条 / 附录 …"""
    return bool(MARKER_RE.match(paragraph)) or paragraph.startswith(("附录", "附件"))


def is_doc_title(paragraph: str) -> bool:
    """A short line without sentence punctuation that ends in a document-type word."""
    return len(paragraph) <= 80 and not _TITLE_STOPS.intersection(paragraph) and bool(_DOC_TYPE_RE.search(paragraph))


def find_front_matter(paragraphs: list[str]) -> FrontMatter:
    """Locate the title(s) before the first heading, and a forwarding notice's title.

    A notice (…的通知) followed by another title is a cover letter for that document: the
    document's own title is the later one.
    """
    end = next((i for i, p in enumerate(paragraphs) if is_structural_heading(p)), len(paragraphs))
    titles = tuple(i for i in range(end) if is_doc_title(paragraphs[i]))
    notice = next((i for i in titles if _FORWARDING_RE.search(paragraphs[i])), None)
    later = [i for i in titles if notice is not None and i > notice]
    later_own = [i for i in later if not _FORWARDING_RE.search(paragraphs[i])]
    if notice is not None and later_own:
        return FrontMatter(end, titles, later_own[0], notice)
    return FrontMatter(end, titles, titles[0] if titles else None, None)


# ------------------------------------------------------------------------------ fields


def _title(paragraphs: list[str], front: FrontMatter, source: str) -> str:
    if front.main_title is not None:
        return paragraphs[front.main_title]
    if len(paragraphs) > 1 and _is_headline(paragraphs[0]):
        return paragraphs[0]  # a notice or news item whose first line is its headline
    return Path(source).stem


def _is_headline(line: str) -> bool:
    """A first line that reads as a headline: short, several Chinese characters, no sentence end."""
    return 4 <= len(re.findall(_CN_CHAR, line)) and len(line) <= 60 and not re.search(r"[。！？；!?;]$", line)


def _kind(title: str, paragraphs: list[str]) -> str:
    """plan | regulation | notice | interpretation | qa | news | other."""
    if _PLAN_RE.search(title):
        return "plan"
    if _REGULATION_RE.search(title) or any(_ARTICLE_RE.match(p) for p in paragraphs):
        return "regulation"
    if _INTERPRETATION_RE.search(title):
        return "interpretation"
    if sum(1 for p in paragraphs if _QA_RE.match(p)) >= 2:
        return "qa"
    if _NOTICE_RE.search(title):
        return "notice"
    if any(_NEWS_RE.search(p) for p in paragraphs[1:4]):
        return "news"
    return "other"


# A national programme's local instance names its place in brackets: 中国（广东）自由贸易试验区.
_NATIONAL_BRACKET = re.compile(r"中国[（(]([^（）()]{2,10})[）)]")


def _area(name: str) -> str | None:
    """The most specific division a title or issuer starts with: 上海市静安区… → 静安区,
    深圳经济特区… → 深圳市; 住宅小区… → None (see rag.core.places)."""
    place = gazetteer().prefix(name)
    if place is None and (m := _NATIONAL_BRACKET.match(name)):
        place = gazetteer().prefix(m.group(1))  # 中国（上海）自由贸易试验区… → 上海市
    return place.name if place else None


def _area_named(paragraphs: list[str]) -> str | None:
    """The first province or city named in full in the title or lead ("关于做好北京市…的通知",
    "本报讯 广州市…"): the place a notice or news item is about. Bare county names (长安,
    和平) are ordinary words too often to count."""
    for text in paragraphs:
        for alias, places in gazetteer().mentions(text):
            senior = [p for p in places if p.level != "county" and alias == p.name]
            if senior:
                return senior[0].name
    return None


def _area_of_lines(head: list[str]) -> str | None:
    """The division of an adoption line or letterhead that names one: "2019年…北京市第十五届
    人民代表大会常务委员会…通过" → 北京市, when neither title nor issuer starts with a place."""
    for p in head:
        m = _SESSION_RE.search(_DATE_RE.sub(" ", p))
        place = gazetteer().prefix(m.group(1)) if m else None
        if place:
            return place.name
    return None


def _issuer(head: list[str]) -> str | None:
    """The legislature that passed a regulation, else the first organisation-name line."""
    for p in head:
        # Dates go first so "…17日上海市第十三届…" does not yield "日上海市…".
        m = _SESSION_RE.search(_DATE_RE.sub(" ", p)) if _ENACTED_RE.search(p) else None
        if m:
            return m.group(1) + m.group(2)
    for p in head:
        name = p.removesuffix("文件")  # letterhead: 上海市…办公室文件
        if len(name) <= 40 and not _TITLE_STOPS.intersection(name) and _ORG_RE.search(name):
            if not is_doc_title(name):
                return name
    return None


def _doc_number(head: list[str]) -> str | None:
    for p in head:
        m = _DOC_NUMBER_RE.search(p)
        if m:
            return re.sub(r"\s", "", m.group())
    return None


def _iso(m: re.Match[str]) -> str:
    year, month, day = (int(g) for g in m.groups())
    return f"{year:04d}-{month:02d}-{day:02d}"


def _source_date(source: str) -> str | None:
    """Fallback: an ISO date in the file name, e.g. 上海市产品质量条例(2012-04-19).md."""
    m = _SOURCE_DATE_RE.search(Path(source).stem)
    return m.group() if m else None


def _date(head: list[str], paragraphs: list[str]) -> str | None:
    """A signature date line, else the latest enactment/amendment date of the front matter."""
    sign_off = head + paragraphs[-3:]
    standalone = [m for p in sign_off if (m := _DATE_RE.fullmatch(p))]
    if standalone:
        return _iso(standalone[-1])
    enacted = [_iso(m) for p in head if _ENACTED_RE.search(p) for m in _DATE_RE.finditer(p)]
    return max(enacted) if enacted else None
