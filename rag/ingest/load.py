"""Load files into text: .txt/.md in any common Chinese encoding, .pdf (text layer), .docx.

Every failure is an InputError with a one-line reason a user understands.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rag.core.errors import InputError
from rag.core.types import Document, content_hash
from rag.ingest.metadata import extract_metadata
from rag.ingest.paragraphs import normalize_text

log = logging.getLogger(__name__)

SUPPORTED = (".txt", ".md", ".pdf", ".docx")
MIN_CHARS = 20  # fewer visible characters than this is not a document


def decode_bytes(data: bytes, name: str = "") -> str:
    """Decode text bytes: UTF-8 (±BOM), UTF-16 (±BOM), GB18030/GBK; refuse binary."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    sample = data[:4096]
    if sample and sample.count(b"\x00") > len(sample) // 4:
        # UTF-16 without BOM: every other byte of ASCII is NUL.
        le = sample[1::2].count(b"\x00") > sample[0::2].count(b"\x00")
        try:
            return data.decode("utf-16-le" if le else "utf-16-be")
        except UnicodeDecodeError:
            pass
    if b"\x00" in sample:
        raise InputError(f"{name}: 二进制文件，不是文本 (binary file, not text)")
    for enc in ("utf-8", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InputError(
        f"{name}: 无法识别文字编码，请另存为 UTF-8 (cannot decode: not UTF-8, UTF-16 or GB18030; save it as UTF-8)"
    )


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as e:
        raise InputError(f"{path.name}: PDF 文件损坏 (broken PDF: {e})") from e
    # A leading space marks each page break, as in the extractions we were given.
    return "\n ".join(pages)


def _read_docx(path: Path) -> str:
    import zipfile

    import docx

    try:
        d = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise InputError(f"{path.name}: DOCX 文件损坏 (broken DOCX: {e})") from e
    parts = [p.text for p in d.paragraphs]
    for table in d.tables:
        for row in table.rows:
            parts.append(" ".join(cell.text for cell in row.cells))
    return "\n".join(parts)


def read_text(path: Path) -> str:
    """Raw text of a supported file."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise InputError(
            f"{path.name}: 不支持的文件类型 {suffix or '(无扩展名)'}，支持 {', '.join(SUPPORTED)} "
            f"(unsupported file type; supported: {', '.join(SUPPORTED)})"
        )
    if not path.is_file():
        raise InputError(f"{path}: 文件不存在 (file not found)")
    if suffix == ".pdf":
        text = _read_pdf(path)
    elif suffix == ".docx":
        text = _read_docx(path)
    else:
        text = decode_bytes(path.read_bytes(), path.name)
    visible = sum(1 for ch in text if not ch.isspace())
    if visible < MIN_CHARS:
        what = (
            "PDF 没有文字层（可能是扫描件） (PDF has no text layer: scanned?)"
            if suffix == ".pdf"
            else "文件为空 (empty file)"
        )
        raise InputError(f"{path.name}: {what}")
    return text


def build_document(raw: str, source: str) -> Document:
    """Normalise raw text and read its metadata into a Document."""
    text = normalize_text(raw)
    if len(text.strip()) < MIN_CHARS:
        raise InputError(f"{source}: 文件为空 (empty file)")
    meta = extract_metadata(text, source)
    return Document(
        id=content_hash(text),
        source=source,
        title=meta.title,
        text=text,
        kind=meta.kind,
        district=meta.district,
        issuer=meta.issuer,
        doc_number=meta.doc_number,
        date=meta.date,
    )


def load_document(path: Path) -> Document:
    """Read, normalise and describe one file."""
    return build_document(read_text(path), path.name)


def find_files(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Expand folders into supported files; return (files, warnings for skipped ones)."""
    files: list[Path] = []
    warnings: list[str] = []
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if not f.is_file() or f.name.startswith("."):
                    continue
                if f.suffix.lower() in SUPPORTED:
                    files.append(f)
                else:
                    warnings.append(f"跳过 {f}: 不支持的文件类型 (skipped: unsupported type)")
        elif p.exists():
            files.append(p)
        else:
            warnings.append(f"跳过 {p}: 文件不存在 (skipped: not found)")
    return files, warnings
