"""Section paths and chunk bounds on the two bundled plans and real Shanghai regulations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.core.types import SECTION_SEP, Chunk, Document, content_hash
from rag.ingest.chunk import INFO_SECTION, chunk_document, parse_sections
from rag.ingest.load import load_document
from rag.ingest.metadata import extract_metadata
from rag.ingest.paragraphs import normalize_text

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "data" / "docs"
JINSHAN = DOCS / "jinshan_law_based_government_plan_2021-2025.txt"
JINGAN = DOCS / "jingan_law_based_government_plan_2021-2025.txt"
REGULATIONS = ROOT.parent / "shared" / "corpus_extra" / "shanghai_regulations"
MAIN_TASKS = "三、主要任务"

# Independent of rag.ingest.chunk: where a sentence may end, and what a raw numbered item looks like.
SENTENCE_END = re.compile(r"[。！？；!?;][”’」』）)】》\"']*$")
RAW_SUB = re.compile(r"^\s*[（(]([一二三四五六七八九十]+)[）)]\s*(\S.*)$")
RAW_ITEM = re.compile(r"^\s*(?:\*\*)?(\d{1,2})\s*[.．]\s*(?!\d)\S")
RAW_TOP = re.compile(r"^\s*[一二三四五六七八九十]+、")


def load(path: Path) -> Document:
    text = normalize_text(path.read_text(encoding="utf-8"))
    meta = extract_metadata(text, path.name)
    return Document(
        id=content_hash(text), source=path.name, title=meta.title, text=text, kind=meta.kind, district=meta.district
    )


def regulation(name: str) -> Document:
    path = REGULATIONS / name
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return load(path)


@pytest.fixture(scope="module")
def jinshan() -> Document:
    return load(JINSHAN)


@pytest.fixture(scope="module")
def jingan() -> Document:
    return load(JINGAN)


def by_path(chunks: list[Chunk], *path: str) -> list[Chunk]:
    return [c for c in chunks if c.section_path == path]


def raw_main_task_items(path: Path) -> list[tuple[str, str]]:
    """(（X） numeral, item number) for every numbered item under 三、主要任务 in the raw file."""
    items: list[tuple[str, str]] = []
    inside, sub = False, ""
    for line in path.read_text(encoding="utf-8").split("\n"):
        if re.search(r"\.{2,}\s*\d+\s*$", line):  # table of contents
            continue
        if RAW_TOP.match(line):
            inside = line.strip() == MAIN_TASKS
        elif inside and (m := RAW_SUB.match(line)):
            sub = m.group(1)
        elif inside and (m := RAW_ITEM.match(line)):
            items.append((sub, m.group(1)))
    return items


# ------------------------------------------------------------------------- section paths


def test_example_item_path(jinshan: Document) -> None:
    path = (MAIN_TASKS, "（五）强化制度规范约束，推动行政权力制约监督科学有效", "18. 落实行政复议体制改革")
    chunks = by_path(chunk_document(jinshan), *path)
    assert len(chunks) == 1
    assert chunks[0].section == SECTION_SEP.join(path)
    assert chunks[0].text.startswith("18. 落实行政复议体制改革。按照上级机关工作部署")
    assert "在2022年前基本形成公正权威、统一高效的行政复议工作体制" in chunks[0].text


@pytest.mark.parametrize("path", [JINSHAN, JINGAN], ids=["jinshan", "jingan"])
def test_every_main_task_item_is_its_own_chunk(path: Path) -> None:
    expected = raw_main_task_items(path)
    assert len(expected) >= 20  # 31 items in 金山, 26 in 静安
    chunks = [c for c in chunk_document(load(path)) if c.section_path[0] == MAIN_TASKS]
    got: list[tuple[str, str]] = []
    for c in chunks:
        assert len(c.section_path) == 3, c.section  # 三、 › （X） › N. — nothing floats above an item
        sub, item = c.section_path[1], c.section_path[2]
        assert sub.startswith("（") and "）" in sub
        number = re.match(r"\d+", item)
        assert number and item[number.end()] in ".．", item
        assert c.text.startswith(item) or got[-1:] == [(sub[1 : sub.index("）")], number.group())], c.text[:30]
        key = (sub[1 : sub.index("）")], number.group())
        if not got or got[-1] != key:
            got.append(key)
    assert got == expected


def test_jinshan_paths(jinshan: Document) -> None:
    chunks = chunk_document(jinshan)
    assert chunks[0].section_path == ("前言",)
    assert "“十四五”时期是我国全面建成小康社会" in chunks[0].text
    assert by_path(chunks, "一、发展现状", "（二）主要问题与挑战")[0].text.endswith("具体体现在：")
    assert by_path(chunks, "一、发展现状", "（三）形势要求", "3. 金山区对法治政府建设明确了新任务")
    assert by_path(chunks, "二、总体要求", "（二）基本原则")[0].text.startswith("——坚持党的集中统一领导。")
    # "(三) 实施规划评估。…" is half-width in the body: the path folds it, the text keeps it.
    (evaluation,) = by_path(chunks, "四、本规划的实施安排", "（三）实施规划评估")
    assert evaluation.text.startswith("(三) 实施规划评估。区法治政府办于2024年")
    (glossary,) = by_path(chunks, "附录：有关名词解释", "1. 两区一堡")
    assert glossary.text == (
        "1. 两区一堡：“上海制造”品牌的重要承载区，实施乡村振兴战略的先行区，长三角高质量一体化发展的桥头堡。"
    )
    assert by_path(chunks, "附录：有关名词解释", "10. “1+3+N”城市运行管理系统")


def test_jingan_paths(jingan: Document) -> None:
    chunks = chunk_document(jingan)
    notice = "关于转发区司法局《静安区法治政府建设“十四五”规划》的通知"
    notice_chunks = by_path(chunks, notice)
    assert notice_chunks and chunks[: len(notice_chunks)] == notice_chunks
    notice_text = "\n".join(c.text for c in notice_chunks)
    assert "静府办发〔2021〕11号" in notice_text and notice_text.endswith(
        "特此通知。\n上海市静安区人民政府办公室\n2021年9月24日"
    )
    preamble = by_path(chunks, "前言")
    assert preamble[0].text.startswith("党中央、国务院和市委、市政府高度重视法治政府建设。")
    assert by_path(chunks, "一、发展背景", "（一）法治政府建设基础")[0].text.startswith("优化营商环境取得新成绩。")
    (review,) = by_path(chunks, MAIN_TASKS, "（五）有效监督制约行政权力", "5．提升行政复议和行政应诉水平")
    assert "2022年底前形成公正权威、统一高效的行政复议体制机制" in review.text
    assert by_path(chunks, "四、重大项目", "（一）加快推进和融入城市运行“一网统管”")
    assert by_path(chunks, "五、保障措施", "（三）严格落实法治责任")[-1].text.endswith(
        "确保各项部署有序推进、取得实效。"
    )


@pytest.mark.parametrize("path", [JINSHAN, JINGAN], ids=["jinshan", "jingan"])
def test_headings_and_toc_are_not_chunks(path: Path) -> None:
    chunks = chunk_document(load(path))
    labels = {label for c in chunks for label in c.section_path}
    for c in chunks:
        assert c.text not in labels, c.text
        assert "...." not in c.text and not any("...." in label for label in c.section_path)
        assert not re.search(r"\t\d+$", c.text)


def test_inline_enumerations_are_not_headings() -> None:
    text = "一、总体要求\n（一）目标\n到2025年，实现以下目标：（1）甲；（2）乙。\n2. 5%的增长不是标题，1. 也不是。"
    assert parse_sections(text) == [
        (("一、总体要求", "（一）目标"), "到2025年，实现以下目标：（1）甲；（2）乙。"),
        (("一、总体要求", "（一）目标"), "2. 5%的增长不是标题，1. 也不是。"),
    ]


# ------------------------------------------------------------------------------- bounds


def aligned_in(piece: str, para: str) -> bool:
    """piece is a run of whole sentences of para."""
    start = para.find(piece)
    if start < 0:
        return False
    end = start + len(piece)
    starts_ok = start == 0 or bool(SENTENCE_END.search(para[:start]))
    ends_ok = end == len(para) or bool(SENTENCE_END.search(piece))
    return starts_ok and ends_ok


def sentence_boundaries_ok(chunks: list[Chunk], paragraphs: list[str]) -> None:
    """Every line of a chunk is a run of whole sentences of one paragraph."""
    for c in chunks:
        if c.section_path == (INFO_SECTION,):
            continue  # the 文件信息 passage is written from the metadata, not cut from the text
        for piece in c.text.split("\n"):
            assert any(aligned_in(piece, p) for p in paragraphs), f"sentence cut: {piece[:30]}…{piece[-30:]}"


@pytest.mark.parametrize("max_chars", [400, 150])
@pytest.mark.parametrize("path", [JINSHAN, JINGAN], ids=["jinshan", "jingan"])
def test_chunk_bounds_and_sentences(path: Path, max_chars: int) -> None:
    doc = load(path)
    chunks = chunk_document(doc, max_chars=max_chars)
    assert [c.order for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        inner = c.text.rstrip("”’」』）)】》\"'")[:-1]
        single_sentence = not re.search(r"[。！？；!?;\n]", inner)
        assert len(c.text) <= max_chars or single_sentence, (len(c.text), c.text[:40])
        assert c.title == doc.title and c.district == doc.district
    sentence_boundaries_ok(chunks, doc.text.split("\n"))


@pytest.mark.parametrize("path", [JINSHAN, JINGAN], ids=["jinshan", "jingan"])
def test_no_content_is_lost(path: Path) -> None:
    """Every normalised paragraph is chunk text, a path label, or a document title."""
    doc = load(path)
    chunks = chunk_document(doc)
    body = "".join(c.text.replace("\n", "") for c in chunks)
    labels = {label for c in chunks for label in c.section_path}
    for para in doc.text.split("\n"):
        folded = re.sub(r"^\((.)\)\s*", r"（\1）", para)
        assert para in body or folded in labels or para == doc.title or para.endswith("的通知"), para


# -------------------------------------------------------------------------- regulations


def test_regulation_article_paths() -> None:
    doc = regulation("上海市专利保护条例.md")
    chunks = chunk_document(doc)
    assert all(len(c.section_path) == 2 and c.section_path[0].startswith("第") for c in chunks)
    (ninth,) = by_path(chunks, "第二章 专利管理", "第九条")
    assert ninth.text.startswith("第九条 鼓励企业、事业单位和个人在技术开发")
    # The article's list items stay inside the article.
    assert "\n（一）申请政府资助的研究开发或者技术改造项目；" in ninth.text
    assert ninth.text.endswith("（三）申报市科学技术进步奖项目。")
    articles = re.findall(r"(?m)^(第[一二三四五六七八九十百]+条) ", doc.text)
    assert list(dict.fromkeys(c.section_path[-1] for c in chunks)) == articles


def test_regulation_sections_and_preamble() -> None:
    doc = regulation("上海市数据条例(2021-11-25).md")
    chunks = chunk_document(doc)
    assert chunks[0].section_path == ("前言",)
    assert chunks[0].text == "2021年11月25日上海市第十五届人民代表大会常务委员会第三十七次会议通过"
    (art,) = by_path(chunks, "第二章 数据权益保障", "第二节 个人信息特别保护", "第十八条")
    assert art.text.startswith("第十八条 除法律、行政法规另有规定外")
    (last,) = by_path(chunks, "第十章 附则", chunks[-1].section_path[-1])
    assert last.text.endswith("起施行。")


def test_all_regulations_chunk_into_articles() -> None:
    if not REGULATIONS.is_dir():
        pytest.skip(f"{REGULATIONS} is missing")
    for path in sorted(REGULATIONS.glob("*.md")):
        raw = path.read_text(encoding="utf-8")
        chunks = chunk_document(load(path))
        assert chunks, path.name
        expected = re.findall(r"(?m)^(第[一二三四五六七八九十百零]+条(?:之[一二三四五六七八九十]+)?)\s", raw)
        got = list(dict.fromkeys(c.section_path[-1] for c in chunks if c.section_path[-1] in expected))
        assert got == expected, path.name
        chapters = re.findall(r"(?m)^#+\s*(第[一二三四五六七八九十]+章)", raw)
        tops = (re.match(r"第[一二三四五六七八九十]+章", c.section_path[0]) for c in chunks)
        assert list(dict.fromkeys(m.group() for m in tops if m)) == chapters, path.name
        assert all(len(c.text) <= 400 or "\n" not in c.text for c in chunks), path.name


def test_info_passage_of_a_forwarding_notice() -> None:
    """ "关于转发X《Y》的通知": X drafted the plan; the salutation line lists the recipients."""
    jingan = load_document(JINGAN)
    head = re.sub(r"[ \t]+", "", jingan.text[:600])
    drafter = re.search(r"转发(\S+?)《", head)
    salutation = re.search(r"\n([^\n：]+)：\n", head)
    assert drafter and salutation
    info = chunk_document(jingan)[-1]
    assert info.section_path == ("文件信息",)
    assert f"起草（编制）单位：{drafter.group(1)}" in info.text
    assert salutation.group(1) in info.text


def test_info_passage_of_a_plan_issued_directly() -> None:
    jinshan = load_document(JINSHAN)
    info = chunk_document(jinshan)[-1]
    assert info.section_path == ("文件信息",) and "编制单位" in info.text and "起草" not in info.text
