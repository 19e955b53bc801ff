"""The Gradio chat and admin handlers through `gradio_client` against a real server, plus the
HTML rendering that keeps document and user text inert."""

from __future__ import annotations

import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # app.py sits beside the installed `rag` package

from app import build_app, esc, highlight, render_answer, running
from rag.core.settings import Settings
from rag.index.embed import Embedder
from rag.serve.admin import Admin
from rag.serve.api import LivePipeline

PASSWORD = "test-pass"
JINSHAN = "金山区如何推进“一网通办”？"


@dataclass
class Live:
    url: str
    settings: Settings
    admin: Admin


@pytest.fixture(scope="module")
def live(
    private_plans: Callable[..., Settings], embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    settings = private_plans(tmp_path_factory.mktemp("app"), admin_password=PASSWORD)
    provider = LivePipeline(settings, embedder)
    admin = Admin(settings, provider)
    with running(build_app(settings, provider, admin=admin)) as url:
        yield Live(url, settings, admin)
    admin.shutdown()


def client(live: Live) -> Any:
    from gradio_client import Client

    return Client(live.url, verbose=False)


def text_of(message: dict[str, Any]) -> str:
    """A Chatbot message's content as one string (Gradio 6 sends a list of parts)."""
    content = message["content"]
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def last_answer(result: tuple[Any, ...]) -> str:
    chat = result[0]
    assert chat[-1]["role"] == "assistant"
    return text_of(chat[-1])


# -- chat --------------------------------------------------------------------------------------


def test_api_names_are_explicit(live: Live) -> None:
    names = set(client(live).view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/ask", "/feedback_up", "/feedback_down", "/admin_upload", "/admin_delete", "/admin_reindex"} <= names


def test_chat_answer_with_citations(live: Live) -> None:
    c = client(live)
    result = c.predict(JINSHAN, "全部", api_name="/ask")
    assert result[1] == ""  # the input box is cleared
    html = last_answer(result)
    assert '<sup class="zc-ref">[1]</sup>' in html
    assert html.count('<details class="zc-cite">') >= 1 and "<summary>" in html
    assert " › " in html and "<mark>" in html and "一网通办" in html
    assert "zc-refusal" not in html
    assert text_of(result[0][-2]) == '<div class="zc-user">金山区如何推进“一网通办”？</div>'


def test_followups_keep_the_conversation_scope(live: Live) -> None:
    c = client(live)
    c.predict(JINSHAN, "全部", api_name="/ask")
    switched = last_answer(c.predict("那静安区呢？", "全部", api_name="/ask"))
    assert "按上下文理解为" in switched and "检索范围：静安区" in switched
    assert re.findall(r'class="zc-tag">([^<]+)<', switched) and set(
        re.findall(r'class="zc-tag">([^<]+)<', switched)
    ) == {"静安区"}
    stay = last_answer(c.predict("它的考核要求是什么", "全部", api_name="/ask"))
    assert "「静安区的考核要求是什么」" in stay  # the scope follows the latest switch

    fresh = client(live)
    fresh.predict(JINSHAN, "全部", api_name="/ask")
    stay = last_answer(fresh.predict("它的考核要求是什么", "全部", api_name="/ask"))
    assert "「金山区的考核要求是什么」" in stay and "检索范围：金山区" in stay


def test_scope_selector_restricts_retrieval(live: Live) -> None:
    html = last_answer(client(live).predict("如何推进重大行政决策合法性审查？", "静安区", api_name="/ask"))
    assert set(re.findall(r'class="zc-tag">([^<]+)<', html)) == {"静安区"}


def test_refusal_looks_like_a_refusal(live: Live) -> None:
    html = last_answer(client(live).predict("浦东新区的法治政府建设有哪些主要任务？", "全部", api_name="/ask"))
    assert 'class="zc-refusal"' in html and "未找到依据" in html
    assert "最相关的段落" in html and html.count("<details") >= 1
    assert 'class="zc-ref"' not in html  # no [n] markers on a refusal


def test_html_in_a_question_is_inert(live: Live) -> None:
    q = "<img src=x onerror=alert(1)>**粗体**[链接](javascript:alert(1)) 金山区如何推进一网通办"
    result = client(live).predict(q, "全部", api_name="/ask")
    user = text_of(result[0][-2])
    assert "<img" not in user and "&lt;img src=x onerror=alert(1)&gt;" in user
    assert "**" not in user and "](" not in user  # markdown cannot turn it into emphasis or a link


def test_too_long_question_is_explained(live: Live) -> None:
    html = last_answer(client(live).predict("问" * 501, "全部", api_name="/ask"))
    assert 'class="zc-error"' in html and "问题过长" in html


def test_feedback_is_stored(live: Live) -> None:
    c = client(live)
    assert "没有可评价" in c.predict("", api_name="/feedback_up")[0]
    c.predict(JINSHAN, "全部", api_name="/ask")
    status, box = c.predict("引用准确", api_name="/feedback_up")
    assert "👍" in status and box == ""
    c.predict("浦东新区的法治政府建设有哪些主要任务？", "全部", api_name="/ask")
    c.predict("", api_name="/feedback_down")
    with sqlite3.connect(live.settings.data_dir / "feedback.sqlite") as db:
        rows = db.execute("SELECT rating, comment, question, abstained, citations FROM feedback ORDER BY id").fetchall()
    assert rows[-2][:4] == ("up", "引用准确", JINSHAN, 0) and "一网通办" in rows[-2][4]
    assert rows[-1][0] == "down" and rows[-1][3] == 1


# -- admin -------------------------------------------------------------------------------------


def _wait_idle(admin: Admin) -> None:
    for _ in range(600):
        if not admin.busy():
            return
        time.sleep(0.1)
    raise AssertionError("admin job did not finish")


def test_admin_upload_and_delete_through_the_ui(live: Live, tmp_path: Path) -> None:
    from gradio_client import handle_file

    doc = tmp_path / "fengxian_digital.txt"
    doc.write_text(
        "奉贤区数字化转型工作方案\n\n一、主要任务\n（一）推进数据共享\n"
        "1. 建立公共数据目录。2024年6月底前完成全区公共数据资源目录编制，并按季度更新。\n",
        "utf-8",
    )
    c = client(live)
    refused, _timer = c.predict("wrong", [handle_file(str(doc))], api_name="/admin_upload")
    assert "管理密码错误" in refused
    c.predict(PASSWORD, [handle_file(str(doc))], api_name="/admin_upload")
    _wait_idle(live.admin)
    assert live.admin.jobs()[0].state == "done", live.admin.jobs()[0]
    docs = {d["source"]: d for d in live.admin.documents()}
    assert "fengxian_digital.txt" in docs
    c.predict(PASSWORD, docs["fengxian_digital.txt"]["doc_id"], api_name="/admin_delete")
    _wait_idle(live.admin)
    assert "fengxian_digital.txt" not in {d["source"] for d in live.admin.documents()}
    assert "重新索引" in c.predict(PASSWORD, api_name="/admin_reindex")[0]
    _wait_idle(live.admin)
    assert live.admin.jobs()[0].state == "done" and len(live.admin.documents()) == 2


# -- rendering ---------------------------------------------------------------------------------


def test_esc_neutralises_html_and_markdown() -> None:
    out = esc("<script>alert(1)</script> *a* _b_ [c](d) $x$ `e`\n\nnext")
    assert "<" not in out.replace("<br>", "") and "*" not in out and "[" not in out and "$" not in out
    assert "\n" not in out  # one line: a blank line would end the Chatbot's HTML block
    assert esc("a'b\"c#&") == "a&#39;b&quot;c&#35;&amp;"  # each character escaped exactly once


def test_highlight_marks_the_quote_and_escapes_the_rest() -> None:
    text = "第一句<b>。第二句是依据。第三句。"
    assert highlight(text, "第二句是依据。") == "第一句&lt;b&gt;。<mark>第二句是依据。</mark>第三句。"
    # Sentences quoted from different places in the passage are each marked.
    assert highlight(text, "第一句<b>。第三句。").count("<mark>") == 2
    assert "<mark>" not in highlight(text, "不在原文中。")


def test_render_answer_from_a_document_with_script() -> None:
    cite = {
        "n": 1,
        "title": "<i>规划</i>",
        "district": "金山区",
        "section": "一、总则 › 1. 目标",
        "text": "正文<script>alert(1)</script>。依据句。",
        "quote": "依据句。",
        "source": "a.txt",
        "score": 1.0,
    }
    obj = {"answer": "依据句。[1]", "abstained": False, "citations": [cite], "retrieved": [cite], "scope": "金山区"}
    html = render_answer(obj)
    assert "<script" not in html and "<i>" not in html and "&lt;script&gt;" in html
    assert "<mark>依据句。</mark>" in html and " › " in html


def test_highlight_marks_each_piece_of_a_quote_in_pieces() -> None:
    html = highlight("甲句。乙句。丙句。", "甲句。……丙句。")
    assert html == "<mark>甲句。</mark>乙句。<mark>丙句。</mark>"
