"""The chat page in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
ask, stream, open a citation, follow up, refuse — and no script from a plan or a question runs.
Screenshots go to tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # app.py sits beside the installed `rag` package

from app import EXAMPLES, build_app, running
from rag.core.settings import Settings
from rag.index.embed import Embedder
from rag.serve.admin import Admin
from rag.serve.api import LivePipeline

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PLAN_WITH_SCRIPT = (
    "奉贤区数字化转型工作方案\n\n一、主要任务\n（一）开放数据\n"
    "1. 开放数据接口。<script>alert('plan')</script><img src=x onerror=alert('img')>"
    "2024年底前向社会开放不少于100个公共数据接口。\n"
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def url(
    private_plans: Callable[..., Settings], embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    settings = private_plans(tmp_path_factory.mktemp("browser"), admin_password="pw")
    provider = LivePipeline(settings, embedder)
    admin = Admin(settings, provider)
    job = admin.submit_ingest([admin.save_upload("fengxian_open_data.txt", PLAN_WITH_SCRIPT.encode("utf-8"))])
    assert admin.wait(job.id).state == "done", job
    with running(build_app(settings, provider, admin=admin)) as base:
        yield base
    admin.shutdown()


@pytest.fixture(scope="module")
def page(url: str) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        pg = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
        dialogs: list[str] = []
        pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        pg.dialogs = dialogs  # type: ignore[attr-defined]
        pg.goto(url, wait_until="domcontentloaded")
        pg.wait_for_selector("#zc-examples button", timeout=60_000)
        yield pg
        browser.close()


def ask(page: Any, question: str) -> Any:
    """Type a question, press Enter, wait for the finished answer bubble; return it."""
    before = page.locator("#zc-chat .zc-bubble, #zc-chat .zc-error").count()
    page.locator("#zc-input textarea").fill(question)
    page.locator("#zc-input textarea").press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#zc-chat .zc-bubble, #zc-chat .zc-error').length > n",
        arg=before,
        timeout=60_000,
    )
    return page.locator("#zc-chat .zc-bubble, #zc-chat .zc-error").last


def test_example_question_answer_and_citation(page: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.get_by_role("button", name=EXAMPLES[0]).click()
    page.wait_for_selector("#zc-chat details.zc-cite", timeout=60_000)
    bubble = page.locator("#zc-chat .zc-bubble").last
    assert "一网通办" in bubble.locator(".zc-answer").inner_text()
    assert bubble.locator("sup.zc-ref").first.inner_text() == "[1]"
    cite = bubble.locator("details.zc-cite").first
    assert cite.get_attribute("open") is None  # collapsed until clicked
    cite.locator("summary").click()
    page.wait_for_function("() => document.querySelector('#zc-chat details.zc-cite').open")
    assert " › " in cite.locator(".zc-sec").inner_text()
    assert cite.locator(".zc-tag").inner_text() == "金山区"
    mark = cite.locator("mark").first
    assert mark.is_visible() and "一网通办" in mark.inner_text()
    cite.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)


def test_the_answer_span_is_emphasised_in_its_sentence(page: Any) -> None:
    page.get_by_role("button", name=EXAMPLES[1]).click()  # asks for a rate
    page.wait_for_selector("#zc-chat .zc-span", timeout=60_000)
    answer = page.locator("#zc-chat .zc-bubble").last.locator(".zc-answer")
    span = answer.locator("strong.zc-span").first.inner_text()
    assert span.endswith("%") and span in answer.inner_text() and len(span) < len(answer.inner_text())


def test_follow_up_switches_district(page: Any) -> None:
    bubble = ask(page, "那静安区呢？")
    assert "按上下文理解为" in bubble.locator(".zc-note").inner_text()
    tags = bubble.locator(".zc-tag").all_inner_texts()
    assert tags and set(tags) == {"静安区"}


def test_script_in_plan_and_question_stays_text(page: Any) -> None:
    question = "奉贤区开放多少个公共数据接口？<script>alert('question')</script>"
    bubble = ask(page, question)
    user = page.locator("#zc-chat .zc-user").last
    assert user.inner_text() == question  # shown literally
    cite = bubble.locator("details.zc-cite").first
    cite.locator("summary").click()
    passage = cite.locator(".zc-passage").inner_text()
    assert "<script>alert('plan')</script>" in passage and "<img src=x" in passage
    assert page.locator("#zc-chat script, #zc-chat img[src='x']").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_refusal_is_distinct(page: Any) -> None:
    page.get_by_role("button", name=EXAMPLES[-1]).click()
    page.wait_for_selector("#zc-chat .zc-refusal", timeout=60_000)
    refusal = page.locator("#zc-chat .zc-refusal").last
    assert "未找到依据" in refusal.inner_text()
    bubble = page.locator("#zc-chat .zc-bubble").last
    assert bubble.locator("details.zc-cite").count() >= 1 and bubble.locator("sup.zc-ref").count() == 0
    color = refusal.evaluate("e => getComputedStyle(e).borderLeftColor")
    assert color not in ("", "rgba(0, 0, 0, 0)")  # styled by our CSS, not a plain answer
    page.screenshot(path=str(ARTIFACTS / "chat-refusal.png"), full_page=True)


def test_admin_tab_lists_documents(page: Any) -> None:
    page.get_by_role("tab", name="知识库管理").click()
    docs = page.locator("#zc-docs")
    docs.get_by_text("fengxian_open_data.txt").first.wait_for(timeout=30_000)
    listed = docs.inner_text()
    assert "jinshan_law_based_government_plan_2021-2025.txt" in listed and "奉贤区" in listed
    page.screenshot(path=str(ARTIFACTS / "admin.png"), full_page=True)


# -- the 时间表 tab ----------------------------------------------------------------------------

_TT_COLUMN = (
    "n => [...document.querySelectorAll('#zc-tt-table [role=row].virtual-row')]"
    ".sort((a, b) => a.dataset.index - b.dataset.index)"
    ".map(r => r.querySelector(`[data-col='${n}']`).innerText.trim())"
)
TT = {
    name: i for i, name in enumerate(["序号", "期限", "地区", "任务", "承诺内容", "牵头单位", "目标", "章节", "文件"])
}


def _tt_column(page: Any, name: str) -> list[str]:
    return page.evaluate(_TT_COLUMN, TT[name])


def _tt_refreshed(page: Any, needle: str) -> int:
    """Wait until the table's note names the filter just set; return the row count it states."""
    page.wait_for_function(
        "s => (document.querySelector('#zc-tt-note .zc-note') || {}).innerText?.includes(s)", arg=needle, timeout=60_000
    )
    note = page.locator("#zc-tt-note .zc-note").inner_text()
    count = int(note.split("共 ")[1].split(" 条")[0])
    page.wait_for_function(  # the rows re-render with the note; all of them when they fit
        "n => { const r = document.querySelectorAll('#zc-tt-table [role=row].virtual-row').length;"
        " return n === 0 ? r === 0 : r > 0 && (n > 6 || r === n); }",
        arg=count,
        timeout=30_000,
    )
    return count


def _pick(page: Any, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def _year(deadline: str) -> int | None:
    digits = "".join(c if c.isdigit() else " " for c in deadline).split()
    return int(digits[0]) if digits else None


def test_timetable_tab_filters_sorts_opens_a_passage_and_exports(page: Any, tmp_path: Path) -> None:
    import csv

    import openpyxl

    ARTIFACTS.mkdir(exist_ok=True)
    page.get_by_role("tab", name="时间表").click()
    total = _tt_refreshed(page, "排序：期限")
    assert total >= 10
    years = [_year(d) for d in _tt_column(page, "期限")]
    dated = [y for y in years if y is not None]
    assert dated == sorted(dated) and years[: len(dated)] == dated  # by deadline, recurring ones last

    _pick(page, "zc-tt-place", "静安区")
    in_place = _tt_refreshed(page, "地区：静安区")
    assert 0 < in_place < total and set(_tt_column(page, "地区")) == {"静安区"}
    page.locator("#zc-tt-before input, #zc-tt-before textarea").first.fill("2023-12")
    page.locator("#zc-tt-before input, #zc-tt-before textarea").first.press("Enter")
    due = _tt_refreshed(page, "截止：2023-12")
    assert 2 <= due < in_place
    by_deadline = list(zip(_tt_column(page, "期限"), _tt_column(page, "章节"), strict=True))
    assert all(y is not None and y <= 2023 for y in (_year(d) for d, _ in by_deadline))
    assert [_year(d) for d, _ in by_deadline] == sorted(_year(d) or 0 for d, _ in by_deadline)

    page.locator("#zc-tt-sort").get_by_text("章节", exact=True).click()
    assert _tt_refreshed(page, "排序：章节") == due
    by_section = list(zip(_tt_column(page, "期限"), _tt_column(page, "章节"), strict=True))
    assert sorted(by_section) == sorted(by_deadline) and by_section != by_deadline  # same rows, document order

    texts = _tt_column(page, "承诺内容")
    page.locator("#zc-tt-table [data-testid='cell-0-4']").click()
    page.wait_for_selector("#zc-tt-passage .zc-tt-card", timeout=30_000)
    card = page.locator("#zc-tt-passage .zc-tt-card")
    assert card.locator(".zc-title").inner_text() == f"《{_tt_column(page, '文件')[0]}》"
    assert card.locator(".zc-tag").inner_text() == "静安区"
    assert card.locator(".zc-sec").inner_text().replace(" ", "") == by_section[0][1].replace(" ", "")
    assert card.locator("mark").first.inner_text().replace(" ", "") == texts[0]
    assert card.locator(".zc-tt-when").inner_text() == by_section[0][0]
    card.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "timetable.png"), full_page=True)

    with page.expect_download() as got:
        page.locator("#zc-tt-csv").click()
    assert got.value.suggested_filename.endswith(".csv")
    got.value.save_as(tmp_path / "t.csv")
    with open(tmp_path / "t.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["承诺内容"] for r in rows] == texts and {r["地区"] for r in rows} == {"静安区"}
    with page.expect_download() as got:
        page.locator("#zc-tt-xlsx").click()
    assert got.value.suggested_filename.endswith(".xlsx")
    got.value.save_as(tmp_path / "t.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "t.xlsx").active
    values = list(sheet.iter_rows(values_only=True))
    column = values[0].index("承诺内容")
    assert [v[column] for v in values[1:]] == texts


def test_timetable_rows_from_a_plan_with_a_script_stay_text(page: Any) -> None:
    _pick(page, "zc-tt-place", "全部")
    _tt_refreshed(page, "（截止：2023-12")
    box = page.locator("#zc-tt-before input, #zc-tt-before textarea").first
    box.fill("")
    box.press("Enter")
    _tt_refreshed(page, "（排序：章节）")
    text = page.locator("#zc-tt-text input, #zc-tt-text textarea").first
    text.fill("公共数据接口")
    text.press("Enter")
    assert _tt_refreshed(page, "关键词：公共数据接口") == 1
    assert _tt_column(page, "地区") == ["奉贤区"]
    assert "<script>alert('plan')</script>" in _tt_column(page, "承诺内容")[0]
    page.locator("#zc-tt-table [data-testid='cell-0-4']").click()
    page.wait_for_selector("#zc-tt-passage .zc-tt-card", timeout=30_000)
    assert "<img src=x" in page.locator("#zc-tt-passage .zc-passage").inner_text()
    assert page.locator("#zc-tt-passage script, #zc-tt-table script, img[src='x']").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == []  # type: ignore[attr-defined]
