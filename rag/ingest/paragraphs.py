"""Turn PDF-extracted or Markdown text into clean paragraphs, one per line.

PDF extraction breaks lines mid-sentence, marks page breaks with a leading space and puts
spaces around numbers ("2022 年底前"). The output keeps every content character in order;
only whitespace, the table of contents, Markdown markup (``#`` markers, ``**`` emphasis,
HTML comments) and invisible format characters are removed.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

CN_NUM = "一二三四五六七八九十百千零〇两"

# A paragraph-initial enumeration marker of Chinese official documents and regulations.
# "2. 5%" is not a marker (a digit follows the dot), "2022年" is not one either.
MARKER_RE = re.compile(
    rf"^(?:第[{CN_NUM}\d]+[编章节条](?:之[{CN_NUM}]+)?"
    rf"|[{CN_NUM}]+、"
    rf"|[（(][{CN_NUM}]+[）)]"
    r"|\d{1,3}(?:[.．](?!\s*\d)|、)"
    r"|[（(]\d{1,3}[）)])"
)
# An appendix title: 附录 / 附件2 / 附表：…
APPENDIX_RE = re.compile(rf"^附(?:录|件|表)\s*[\d{CN_NUM}]*\s*(?:[：:]\s*)?")
_HEADING_LINE_RE = re.compile(MARKER_RE.pattern + "|" + APPENDIX_RE.pattern)

# Table-of-contents entries: dot (or ellipsis) leaders followed by a page number.
TOC_LINE_RE = re.compile(r"(?:\.{2,}|…+|·{2,}|_{3,})\s*\d{1,4}\s*$")
_TOC_HEADING = "目录"

_SENTENCE_END = "。！？!?；;：:…"
_CLOSERS = "”’」』）)】》\"'"
_CLAUSE_PUNCT = set("，。、；：！？,;:!?")
_HEADING_STOPS = set("。；：！？;:!?")  # a heading may hold a comma, never a sentence end
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_OPEN_CLOSE = (("《", "》"), ("（", "）"), ("“", "”"))

_MD_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
_BOLD_RE = re.compile(r"\*\*(.+?)\*\*", re.S)


def normalize_text(raw: str) -> str:
    """Clean paragraphs separated by "\\n" (no blank lines) from extracted or Markdown text."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    markdown = is_markdown(text)
    text = _BOLD_RE.sub(r"\1", _HTML_COMMENT_RE.sub("", text))
    lines = [ln.strip() for ln in text.split("\n")]
    lines = drop_toc(lines)
    paragraphs = _markdown_paragraphs(lines) if markdown else _join_extracted(lines)
    cleaned = (tidy_spaces(p) for p in paragraphs)
    return "\n".join(p for p in cleaned if p)


def is_markdown(text: str) -> bool:
    """Markdown input has ``#`` heading lines or HTML comments; extracted text has neither."""
    return bool(re.search(r"(?m)^\s{0,3}#{1,6}\s+\S", text)) or "<!--" in text


def drop_toc(lines: list[str]) -> list[str]:
    """Remove table-of-contents entries and the 目录 heading; keep everything else."""
    return [ln for ln in lines if not TOC_LINE_RE.search(ln) and re.sub(r"\s", "", ln) != _TOC_HEADING]


def is_heading_line(line: str) -> bool:
    """A numbered heading or an appendix title: such a line always starts a paragraph."""
    return bool(_HEADING_LINE_RE.match(line))


# --------------------------------------------------------------------------- Markdown


def _markdown_paragraphs(lines: list[str]) -> list[str]:
    """Markdown semantics: blank lines separate paragraphs, a ``#`` line is its own one."""
    paragraphs: list[str] = []
    block: list[str] = []
    for line in [*lines, ""]:
        heading = _MD_HEADING_RE.match(line)
        if not line or heading:
            if block:
                paragraphs.append(" ".join(block))
                block = []
            if heading:
                paragraphs.append(heading.group(1))
            continue
        block.append(line)
    return paragraphs


# ----------------------------------------------------------------- extracted (PDF) text


def display_width(s: str) -> int:
    """Printed width in half-width units; curly quotes are narrow in these PDFs' fonts."""
    width = 0
    for ch in s:
        if ch in "“”‘’" or ord(ch) < 0x2E80:
            width += 1
        else:
            width += 2 if unicodedata.east_asian_width(ch) in "WFA" else 1
    return width


def line_width(lines: list[str]) -> int | None:
    """Full line width of a fixed-width layout, or None when lines are whole paragraphs.

    One of the plans wraps every line at the same width, so a clearly shorter line ends a
    paragraph; the other keeps paragraphs on one line and only breaks at page ends.
    """
    widths = [display_width(ln) for ln in lines if ln]
    if len(widths) < 20:
        return None
    mode, _ = Counter(widths).most_common(1)[0]
    near = sum(1 for w in widths if abs(w - mode) <= 3)
    return mode if near >= 0.4 * len(widths) else None


def ends_sentence(line: str) -> bool:
    """Sentence-final punctuation (possibly followed by closing quotes) ends the line."""
    stripped = line.rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in _SENTENCE_END


def has_open_bracket(text: str) -> bool:
    """An unclosed 《 / （ / “ means the text runs on into the next line."""
    return any(text.count(o) > text.count(c) for o, c in _OPEN_CLOSE)


def _is_title_like(line: str) -> bool:
    """A short line without clause punctuation: a title, issuer, date or doc number."""
    return len(line) <= 30 and not _CLAUSE_PUNCT.intersection(line)


def _is_pure_heading(line: str) -> bool:
    """A heading line with no sentence after its marker, e.g. "（一）成效回顾"."""
    m = _HEADING_LINE_RE.match(line)
    if m is None or len(line) > 40:
        return False
    return not _HEADING_STOPS.intersection(line[m.end() :])


def _ends_paragraph(para: str, last_line: str, next_line: str, width: int | None) -> bool:
    """Whether the paragraph being built ends before next_line (already known not a heading)."""
    if _is_pure_heading(para):
        return True
    if ends_sentence(last_line):
        # In a fixed-width layout a paragraph's first line is indented, so a full-width
        # line after a sentence end still belongs to the same paragraph.
        return width is None or display_width(next_line) < width - 1
    if has_open_bracket(para):
        return False
    if width is not None:
        return display_width(last_line) < 0.8 * width
    return _is_title_like(last_line)


def _join_extracted(lines: list[str]) -> list[str]:
    """Join lines broken mid-sentence; blank lines carry no information in these files."""
    content = [ln for ln in lines if ln]
    width = line_width(content)
    paragraphs: list[str] = []
    para = last = ""
    for line in content:
        if para and (is_heading_line(line) or _ends_paragraph(para, last, line, width)):
            paragraphs.append(para)
            para = ""
        # A space keeps Latin words apart; tidy_spaces drops it next to CJK.
        para = f"{para} {line}" if para else line
        last = line
    if para:
        paragraphs.append(para)
    return paragraphs


# ------------------------------------------------------------------------- whitespace

_WS_RE = re.compile(r"\s+")
_LATIN = re.compile(r"[A-Za-z0-9]")
_LATIN_PUNCT = set(",.;:!?)]}%'\"&+-/")


def _keep_space(left: str, right: str, before_left: str) -> bool:
    """Keep a space only between two Latin tokens; never inside a number or next to CJK."""
    if not (left.isascii() and right.isascii()):
        return False
    if right.isdigit() and (left.isdigit() or (left in ".," and before_left.isdigit())):
        return False  # "38, 435" / "46. 62" / "1 847": one number split by extraction
    latin_left = bool(_LATIN.match(left)) or left in _LATIN_PUNCT
    return latin_left and bool(_LATIN.match(right) or right in "([{\"'")


def tidy_spaces(para: str) -> str:
    """Drop whitespace next to CJK and inside numbers; one space after a leading marker."""
    para = para.strip()
    head = ""
    marker = MARKER_RE.match(para)
    if marker and para[marker.end() : marker.end() + 1].isspace():
        head = marker.group() + " "
        para = para[marker.end() :].lstrip()
    out: list[str] = []
    pos = 0
    for m in _WS_RE.finditer(para):
        out.append(para[pos : m.start()])
        left = para[m.start() - 1] if m.start() else ""
        before_left = para[m.start() - 2] if m.start() > 1 else ""
        right = para[m.end()] if m.end() < len(para) else ""
        if left and right and _keep_space(left, right, before_left):
            out.append(" ")
        pos = m.end()
    out.append(para[pos:])
    return head + "".join(out)
