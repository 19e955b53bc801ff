"""The chat page in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
ask, stream, open a citation, follow up, refuse — and no script from a plan or a question runs.
Screenshots go to tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
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
def url(plans_settings: Settings, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("browser")
    shutil.copytree(plans_settings.index_dir, tmp / "index", symlinks=True)
    settings = plans_settings.with_changes(index_dir=tmp / "index", data_dir=tmp / "data", admin_password="pw")
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
