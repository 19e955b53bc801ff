"""Gradio's own upload route (POST /gradio_api/upload) against a real server on 127.0.0.1: size,
count and type limits, a per-client budget (429), a cleaned and bounded folder, no server path in
any answer, and the knowledge-base tab's upload still working through it."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # app.py sits beside the installed `rag` package

from app import build_app, running
from rag.core.settings import Settings
from rag.index.embed import Embedder
from rag.serve.admin import Admin
from rag.serve.api import LivePipeline
from rag.serve.uploads import MB, UploadGuard, UploadLimits, UploadRefused

PASSWORD = "upload-pass"
DOC = "奉贤区数据开放工作方案\n\n一、主要任务\n1. 开放数据。2025年底前开放不少于200个公共数据接口。\n"


@dataclass
class Live:
    url: str
    settings: Settings
    admin: Admin
    guard: UploadGuard
    folder: Path
    seen: list[str]  # every response body, checked for the server path at the end


@pytest.fixture(scope="module")
def live(
    private_plans: Callable[..., Settings], embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("uploads")
    folder = tmp / "gradio-tmp"
    before = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(folder)  # the operator's choice wins over ours
    settings = private_plans(tmp, admin_password=PASSWORD, max_upload_mb=1)
    provider = LivePipeline(settings, embedder)
    admin = Admin(settings, provider)
    app = build_app(settings, provider, admin=admin)
    guard: UploadGuard = app.state.uploads
    try:
        with running(app) as url:
            yield Live(url, settings, admin, guard, folder.resolve(), [])
    finally:
        admin.shutdown()
        if before is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = before


@pytest.fixture(autouse=True)
def _fresh_budget(request: pytest.FixtureRequest) -> Iterator[None]:
    if "live" not in request.fixturenames:
        yield
        return
    live: Live = request.getfixturevalue("live")
    limits = live.guard.limits
    live.guard.reset()
    yield
    live.guard.limits = limits
    live.guard.reset()


def post(live: Live, files: list[tuple[str, bytes]]) -> httpx.Response:
    r = httpx.post(live.url + "/gradio_api/upload", files=[("files", (name, data)) for name, data in files], timeout=60)
    live.seen.append(r.text)
    return r


def stored(live: Live) -> list[Path]:
    return sorted(p for p in live.folder.rglob("*") if p.is_file())


def test_upload_gets_a_public_name_that_works_for_download(live: Live) -> None:
    r = post(live, [("plan.txt", DOC.encode("utf-8"))])
    assert r.status_code == 200, r.text
    [name] = r.json()
    assert name.startswith("zc-upload/") and name.endswith("/plan.txt")
    assert str(live.folder) not in r.text and not name.startswith("/")
    real = live.guard.real_path(name)
    assert real is not None and Path(real).read_text("utf-8") == DOC
    got = httpx.get(f"{live.url}/gradio_api/file={name}", timeout=30)
    live.seen.append(got.text)
    assert got.status_code == 200 and got.text == DOC
    bad = httpx.get(f"{live.url}/gradio_api/file=zc-upload/{'0' * 40}/..", timeout=30)
    assert bad.status_code in (400, 403, 404)


def test_oversize_file_is_refused_with_a_clear_message(live: Live) -> None:
    before = stored(live)
    r = post(live, [("big.txt", "政".encode() * (MB // 3 + 1000))])  # just over 1 MB
    assert r.status_code == 413
    assert "文件过大" in r.text and "file too large" in r.text and "1 MB" in r.text
    r = httpx.post(
        live.url + "/gradio_api/upload",
        content=b"x" * (live.guard.limits.max_request_bytes + 1),
        headers={"content-type": "multipart/form-data; boundary=zz"},
        timeout=60,
    )
    live.seen.append(r.text)
    assert r.status_code == 413 and "上传内容过大" in r.text and "upload too large" in r.text
    assert not [p for p in stored(live) if p not in before and p.suffix == ".txt"]


def test_only_the_document_types_are_accepted(live: Live) -> None:
    before = stored(live)
    for name in ("page.html", "run.exe", "noext"):
        r = post(live, [(name, b"<script>alert(1)</script>")])
        assert r.status_code == 415, (name, r.text)
        assert "不支持的文件类型" in r.text and "unsupported file type" in r.text
    assert stored(live) == before  # refused files are removed at once


def test_too_many_files_in_one_request(live: Live) -> None:
    before = stored(live)
    n = live.guard.limits.max_files_per_request + 1
    r = post(live, [(f"f{i}.txt", f"文件{i}".encode()) for i in range(n)])
    assert r.status_code == 400 and f"一次最多上传 {n - 1} 个文件" in r.text and "files per upload" in r.text
    assert stored(live) == before


def test_too_many_uploads_from_one_client_get_429(live: Live) -> None:
    live.guard.limits = dataclasses.replace(live.guard.limits, max_files_per_window=3)
    codes = [post(live, [(f"n{i}.txt", f"第{i}份".encode())]).status_code for i in range(3)]
    assert codes == [200, 200, 200]
    r = post(live, [("n4.txt", "第4份".encode())])
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "上传过于频繁" in r.text and "too many uploads" in r.text


def test_budget_is_per_client_and_frees_up_after_the_window() -> None:
    g = UploadGuard(Path("/nonexistent-zc-folder"), UploadLimits(max_file_bytes=MB, max_files_per_window=2))
    g.admit("a", 10, now=0.0)
    g.admit("a", 10, now=1.0)
    with pytest.raises(UploadRefused) as e:
        g.admit("a", 10, now=2.0)
    assert e.value.status == 429 and e.value.retry_after == 598
    g.admit("b", 10, now=2.0)  # another client is not affected
    g.admit("a", 10, now=601.0)  # the first use left the window


def test_folder_is_cleaned_and_bounded(live: Live) -> None:
    old = live.folder / ("ab" * 20)
    old.mkdir(parents=True, exist_ok=True)
    (old / "left-over.txt").write_bytes(b"x" * 1000)
    stale = time.time() - live.guard.limits.max_age_s - 60
    os.utime(old / "left-over.txt", (stale, stale))
    os.utime(old, (stale, stale))
    keep = live.folder / "not-gradio.txt"  # not Gradio's: never touched
    keep.write_text("x")
    os.utime(keep, (stale, stale))
    assert post(live, [("fresh.txt", "新文件".encode())]).status_code == 200
    assert not old.exists() and keep.exists()

    held = live.guard.clean()
    live.guard.limits = dataclasses.replace(live.guard.limits, folder_max_bytes=held + 100)
    r = post(live, [("more.txt", "再来一份".encode() * 100)])
    assert r.status_code == 503 and "上传暂存区已满" in r.text and "upload area is full" in r.text
    assert int(r.headers["retry-after"]) >= 1


def test_admin_upload_in_the_knowledge_base_tab_still_works(live: Live, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    doc = tmp_path / "fengxian_open_data.txt"
    doc.write_text(DOC, "utf-8")
    c = Client(live.url, verbose=False)
    html, _timer = c.predict(PASSWORD, [handle_file(str(doc))], api_name="/admin_upload")
    live.seen.append(str(html))
    for _ in range(600):
        if not live.admin.busy():
            break
        time.sleep(0.1)
    job = live.admin.jobs()[0]
    assert job.state == "done", job
    assert "fengxian_open_data.txt" in {d["source"] for d in live.admin.documents()}
    config = httpx.get(live.url + "/config", timeout=30)
    live.seen.append(config.text)


def test_no_response_showed_the_server_path(live: Live) -> None:
    assert live.seen, "run with the other tests of this module"
    for text in live.seen:
        assert str(live.folder) not in text
        assert os.path.dirname(str(live.folder)) not in text


def test_client_side_names_cannot_escape_the_folder() -> None:
    g = UploadGuard(Path("/srv/up"), UploadLimits(max_file_bytes=MB))
    assert g.real_path("zc-upload/" + "a" * 40 + "/x.txt") == "/srv/up/" + "a" * 40 + "/x.txt"
    for bad in ("zc-upload/../etc/passwd", "zc-upload/" + "a" * 40 + "/..", "zc-upload/xyz/a.txt", "/etc/passwd"):
        assert g.real_path(bad) is None
    body: Any = {"data": [[{"path": "zc-upload/" + "b" * 40 + "/y.md", "meta": {}}], "zc-upload/" + "b" * 40 + "/y.md"]}
    out = g.resolve(body)
    assert out["data"][0][0]["path"] == "/srv/up/" + "b" * 40 + "/y.md"
    assert out["data"][1] == body["data"][1]  # a plain string (a question) is never rewritten


@pytest.mark.slow
def test_admin_upload_from_the_page_in_a_real_browser(live: Live, tmp_path: Path) -> None:
    """The page's own upload (Gradio's JS client) sends the public name back and the file is indexed."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    doc = tmp_path / "fengxian_browser_upload.txt"
    doc.write_text(DOC.replace("数据开放", "浏览器上传"), "utf-8")
    uploads: list[tuple[int, str]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(locale="zh-CN")
            page.on(
                "response",
                lambda r: uploads.append((r.status, r.text())) if r.url.split("?")[0].endswith("/upload") else None,
            )
            page.goto(live.url, wait_until="domcontentloaded")
            page.wait_for_selector("#zc-examples button", timeout=120_000)
            page.get_by_role("tab", name="知识库管理").click()
            page.locator("input[type=password]").fill(PASSWORD)
            page.locator("input[type=file][accept*='.docx']").set_input_files(str(doc))
            page.wait_for_function("() => document.body.innerText.includes('fengxian_browser_upload')", timeout=60_000)
            page.get_by_role("button", name="上传并索引").click()
            page.wait_for_function(
                "() => /#\\d+ 上传「fengxian_browser_upload.txt」— (✅|❌)/.test(document.body.innerText)",
                timeout=180_000,
            )
            text = page.locator("body").inner_text()
        finally:
            browser.close()
    assert "✅ 完成" in text, text[-2000:]
    assert uploads and all(s == 200 and "zc-upload/" in t and str(live.folder) not in t for s, t in uploads), uploads
    assert "fengxian_browser_upload.txt" in {d["source"] for d in live.admin.documents()}
