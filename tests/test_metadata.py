"""extract_metadata on the two bundled plans and real Shanghai regulations."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.ingest.metadata import DocMeta, extract_metadata
from rag.ingest.paragraphs import normalize_text

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "data" / "docs"
REGULATIONS = ROOT.parent / "shared" / "corpus_extra" / "shanghai_regulations"


def meta_of(path: Path) -> DocMeta:
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return extract_metadata(normalize_text(path.read_text(encoding="utf-8")), path.name)


def test_jinshan_plan() -> None:
    meta = meta_of(DOCS / "jinshan_law_based_government_plan_2021-2025.txt")
    assert meta == DocMeta(
        title="金山区法治政府建设“十四五”规划",
        kind="plan",
        district="金山区",
        issuer="上海市金山区法治政府建设工作领导小组办公室",
        doc_number=None,
        date=None,  # the file carries no date
    )


def test_jingan_plan_behind_a_forwarding_notice() -> None:
    meta = meta_of(DOCS / "jingan_law_based_government_plan_2021-2025.txt")
    assert meta == DocMeta(
        title="静安区法治政府建设“十四五”规划",  # not the notice's title
        kind="plan",
        district="静安区",
        issuer="上海市静安区人民政府办公室",
        doc_number="静府办发〔2021〕11号",
        date="2021-09-24",
    )


def test_regulation_with_amendments() -> None:
    meta = meta_of(REGULATIONS / "上海口岸服务条例(2020-05-14).md")
    assert meta.title == "上海口岸服务条例"
    assert meta.kind == "regulation"
    assert meta.issuer == "上海市人民代表大会常务委员会"
    assert meta.district == "上海市"  # the title names no area: the issuer's
    assert meta.date == "2020-05-14"  # the latest amendment, not 2011-11-17
    assert meta.doc_number is None


def test_regulation_areas() -> None:
    assert meta_of(REGULATIONS / "上海市数据条例(2021-11-25).md").district == "上海市"
    pudong = meta_of(REGULATIONS / "上海市浦东新区市场主体退出若干规定(2021-09-28).md")
    assert (pudong.district, pudong.kind, pudong.date) == ("浦东新区", "regulation", "2021-09-28")


def test_regulation_without_info_block() -> None:
    meta = meta_of(REGULATIONS / "上海市专利保护条例.md")
    assert (meta.title, meta.kind, meta.district) == ("上海市专利保护条例", "regulation", "上海市")
    assert meta.issuer is None and meta.date is None


def test_fallbacks() -> None:
    meta = extract_metadata("一段没有标题的文字。\n另一段。", "notes/some_file.txt")
    assert meta == DocMeta(title="some_file", kind="other")
    dated = extract_metadata("第一条 本规定自公布之日起施行。", "某规定(2020-01-02).md")
    assert (dated.kind, dated.date) == ("regulation", "2020-01-02")


def test_all_regulations_have_title_and_kind() -> None:
    if not REGULATIONS.is_dir():
        pytest.skip(f"{REGULATIONS} is missing")
    for path in sorted(REGULATIONS.glob("*.md")):
        meta = meta_of(path)
        first_line = path.read_text(encoding="utf-8").split("\n", 1)[0]
        assert meta.title == first_line.removeprefix("# ").strip(), path.name
        assert meta.kind == "regulation", path.name
        assert meta.date is None or meta.date[:4].isdigit(), path.name
        assert meta.issuer in (None, "上海市人民代表大会常务委员会", "上海市人民代表大会"), path.name


def test_place_from_title_adoption_line_and_aliases() -> None:
    def place(text: str) -> str | None:
        return extract_metadata(normalize_text(text), "x.md").district

    adopted = "（2019年3月29日{body}第十二次会议通过）\n<!-- INFO END -->\n## 第一章 总则\n第一条 为了规范管理，制定本条例。\n"
    assert place("# 住宅小区物业服务条例\n" + adopted.format(body="昆明市第十五届人民代表大会常务委员会")) == "昆明市"
    assert place("# 前海合作区条例\n" + adopted.format(body="深圳市第七届人民代表大会常务委员会")) == "深圳市"
    assert place("# 深圳经济特区绿化条例\n" + adopted.format(body="深圳市第七届人民代表大会常务委员会")) == "深圳市"
    assert (
        place("# 重庆市酉阳土家族苗族自治县自治条例\n" + adopted.format(body="重庆市人民代表大会"))
        == "酉阳土家族苗族自治县"
    )
    assert place("# 住宅小区停车管理办法\n第一条 为了规范停车，制定本办法。\n") is None
    assert place("# 港口服务指南\n第二条 行李寄存点设在候船大厅东侧。\n") is None  # 港口区's short name, a word here
    # A national programme's local instance, named by its province in brackets.
    assert place("# 中国（福建）自由贸易试验区条例\n第一条 为了推进试验区建设，制定本条例。\n") == "福建省"


def test_a_notice_or_news_item_takes_its_first_line_as_title_and_kind() -> None:
    news = "广州市启动老旧小区加装电梯补贴申报\n\n5月8日，广州市住房和城乡建设局发布通知。\n申报截止日期为6月30日。\n"
    meta = extract_metadata(normalize_text(news), "/uploads/8f3a2c.txt")
    assert (meta.title, meta.kind, meta.district) == ("广州市启动老旧小区加装电梯补贴申报", "news", "广州市")
    notice = "关于做好天津市2025年度防汛工作的通知\n\n各区人民政府：\n现将有关事项通知如下。\n"
    meta = extract_metadata(normalize_text(notice), "a.txt")
    assert (meta.kind, meta.district) == ("notice", "天津市")
    qa = "个人所得税专项附加扣除政策问答\n\n问：子女教育扣除标准是多少？\n答：每个子女每月2000元。\n问：何时申报？\n答：次年3月。\n"
    assert extract_metadata(normalize_text(qa), "b.txt").kind == "interpretation"
