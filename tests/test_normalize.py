"""normalize_text on the two bundled plans (PDF extractions) and the Markdown regulations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.ingest.paragraphs import normalize_text

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "data" / "docs"
JINSHAN = DOCS / "jinshan_law_based_government_plan_2021-2025.txt"
JINGAN = DOCS / "jingan_law_based_government_plan_2021-2025.txt"
REGULATIONS = ROOT.parent / "shared" / "corpus_extra" / "shanghai_regulations"

# Independent of rag.ingest.paragraphs: a TOC entry ends in dot leaders and a page number.
TOC_LINE = re.compile(r"\.{2,}\s*\d+\s*$")
INVISIBLE = re.compile(r"[\s\u200b\ufeff]")


def squeeze(text: str) -> str:
    return INVISIBLE.sub("", text)


def raw_body(raw: str) -> str:
    """Raw text without TOC lines, the 目录 heading and Markdown/HTML markup."""
    raw = re.sub(r"<!--.*?-->", "", raw, flags=re.S).replace("**", "")
    kept = []
    for line in raw.split("\n"):
        if TOC_LINE.search(line) or squeeze(line) == "目录":
            continue
        kept.append(re.sub(r"^\s*#+\s", "", line))
    return "\n".join(kept)


def lines(text: str) -> list[str]:
    return text.split("\n")


@pytest.fixture(scope="module")
def jinshan() -> str:
    return normalize_text(JINSHAN.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def jingan() -> str:
    return normalize_text(JINGAN.read_text(encoding="utf-8"))


def regulation_files() -> list[Path]:
    if not REGULATIONS.is_dir():
        pytest.skip(f"{REGULATIONS} is missing")
    return sorted(REGULATIONS.glob("*.md"))


@pytest.mark.parametrize("path", [JINSHAN, JINGAN], ids=["jinshan", "jingan"])
def test_every_body_character_survives_in_order(path: Path) -> None:
    raw = path.read_text(encoding="utf-8")
    assert squeeze(normalize_text(raw)) == squeeze(raw_body(raw))


def test_every_regulation_character_survives_in_order() -> None:
    for path in regulation_files():
        raw = path.read_text(encoding="utf-8")
        assert squeeze(normalize_text(raw)) == squeeze(raw_body(raw)), path.name


@pytest.mark.parametrize("name", ["jinshan", "jingan"])
def test_paragraphs_are_clean_lines(name: str, request: pytest.FixtureRequest) -> None:
    text: str = request.getfixturevalue(name)
    for line in lines(text):
        assert line, "blank line"
        assert line == line.strip(), f"page-break space kept: {line!r}"
        assert "**" not in line


def test_table_of_contents_is_dropped(jinshan: str) -> None:
    assert "....." not in jinshan
    assert "目 录" not in jinshan and "目录" not in lines(jinshan)
    assert "(一) 成效回顾" not in jinshan  # the TOC's half-width form
    # Each body heading appears once (the TOC copy is gone), nothing else is dropped.
    assert lines(jinshan).count("一、发展现状") == 1
    assert lines(jinshan).count("附录：有关名词解释") == 1
    assert lines(jinshan).count("金山区法治政府建设“十四五”规划") == 2  # cover and first page


def test_spaces_around_numbers_are_removed(jinshan: str, jingan: str) -> None:
    for kept in ["2022年底前", "46.62%", "取消调整行政审批事项164项", "总数5%的要求", "38,435件", "融入110非警务警情"]:
        assert kept in jinshan, kept
    for kept in ["静府办发〔2021〕11号", "2021年9月24日", "规划期至2025年，展望到2035年。", "88.75%"]:
        assert kept in jingan, kept
    assert not re.search(r"\d[ \t\u3000]+[\u4e00-\u9fff]|[\u4e00-\u9fff][ \t\u3000]+\d", jinshan + jingan)


def test_headings_are_their_own_paragraphs(jinshan: str, jingan: str) -> None:
    for heading in ["三、主要任务", "（五）强化制度规范约束，推动行政权力制约监督科学有效", "附录：有关名词解释"]:
        assert heading in lines(jinshan)
    for heading in ["一、发展背景", "（一）法治政府建设基础", "（三）科学民主依法行政决策", "五、保障措施"]:
        assert heading in lines(jingan)  # " 一、发展背景" started a page


def test_lines_broken_mid_sentence_are_joined(jinshan: str, jingan: str) -> None:
    assert any(p.startswith("1. 法治政府建设进一步夯实。") and "充分发挥党总揽全局" in p for p in lines(jinshan))
    assert "9. 市域社会治理现代化六大体系：基层社会治理体系、国家安全体系、" in jinshan
    assert "区司法局《静安区法治政府建设“十四五”规划》已经区政府审核通过。" in lines(jingan)
    # A title split over two lines inside 《…》 is one paragraph; the issuer line above is not.
    assert "关于转发区司法局《静安区法治政府建设“十四五”规划》的通知" in lines(jingan)
    assert "上海市静安区人民政府办公室" in lines(jingan)
    # The signature block stays line by line.
    i = lines(jingan).index("特此通知。")
    assert lines(jingan)[i + 1 : i + 4] == [
        "上海市静安区人民政府办公室",
        "2021年9月24日",
        "静安区法治政府建设“十四五”规划",
    ]


def test_whitespace_rules_on_small_input() -> None:
    raw = "Open Data 平台 2. 5% 的 AI 模型，46. 62% 与 38, 435 件\n\n“1” 是 3 个 Hello, world!"
    assert normalize_text(raw) == "Open Data平台2.5%的AI模型，46.62%与38,435件“1”是3个Hello, world!"


def test_markdown_input() -> None:
    raw = "# 上海市某某条例\n\n<!-- INFO END -->\n\n## 第一章　总则\n\n第一条 为了**规范**管理，\n制定本条例。\n"
    assert normalize_text(raw) == "上海市某某条例\n第一章 总则\n第一条 为了规范管理，制定本条例。"


def test_regulation_headings_and_articles() -> None:
    path = REGULATIONS / "上海市专利保护条例.md"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    text = normalize_text(path.read_text(encoding="utf-8"))
    assert lines(text)[:2] == ["上海市专利保护条例", "第一章 总则"]
    assert lines(text)[2].startswith("第一条 为了保护发明创造专利权")
    assert "（一）申请政府资助的研究开发或者技术改造项目；" in lines(text)
    assert "INFO END" not in text and "#" not in text
