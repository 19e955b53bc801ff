"""The REST and OpenAI-compatible APIs on a real uvicorn server (app.build_app: API + Gradio),
over a private copy of the session index so admin tests cannot disturb other modules."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # app.py sits beside the installed `rag` package

from app import build_app, running
from rag.answer.pipeline import Pipeline
from rag.core.settings import Settings
from rag.index.embed import Embedder
from rag.serve.admin import Admin, AdminDisabledError
from rag.serve.api import LivePipeline, create_api

PASSWORD = "test-pass"
ASK = "静安区如何推进重大行政决策合法性审查？"
UPLOAD_TEXT = (
    "奉贤区数字化转型工作方案\n\n一、工作目标\n到2025年底，奉贤区建成城市运行“一网统管”平台。\n"
    "二、主要任务\n（一）推进数据共享\n1. 建立公共数据目录。2024年6月底前完成全区公共数据资源目录编制，并按季度更新。\n"
)


@dataclass
class Live:
    url: str
    settings: Settings
    admin: Admin


@pytest.fixture(scope="module")
def live(
    private_plans: Callable[..., Settings], embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    settings = private_plans(tmp_path_factory.mktemp("api"), admin_password=PASSWORD, max_upload_mb=1)
    provider = LivePipeline(settings, embedder)
    admin = Admin(settings, provider)
    with running(build_app(settings, provider, admin=admin)) as url:
        yield Live(url, settings, admin)
    admin.shutdown()


@pytest.fixture(scope="module")
def http(live: Live) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=60) as c:
        yield c


# -- REST ----------------------------------------------------------------------------------------


def test_healthz(http: httpx.Client) -> None:
    r = http.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["documents"] == 2 and body["chunks"] > 50
    assert body["districts"] == ["金山区", "静安区"]


def test_ask_returns_cited_answer(http: httpx.Client) -> None:
    r = http.post("/api/ask", json={"question": ASK})
    assert r.status_code == 200, r.text
    obj = r.json()
    assert set(obj) >= {"question", "answer", "abstained", "citations", "retrieved", "timings_ms"}
    assert obj["question"] == ASK and not obj["abstained"] and "rewritten_question" not in obj
    assert "[1]" in obj["answer"] and "合法性审查" in obj["answer"]
    c = obj["citations"][0]
    assert c["n"] == 1 and c["district"] == "静安区" and " › " in c["section"]
    assert c["quote"] and c["quote"] in c["text"] and c["title"].startswith("静安区")
    assert obj["scope"] == "静安区"


def test_ask_district_filter(http: httpx.Client) -> None:
    obj = http.post("/api/ask", json={"question": "如何推进“一网通办”？", "district": "金山区"}).json()
    assert not obj["abstained"]
    assert {c["district"] for c in obj["citations"]} == {"金山区"}
    assert http.post("/api/ask", json={"question": "如何推进“一网通办”？", "district": "全部"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"question": ""}, "问题不能为空"),
        ({"question": "   "}, "empty"),
        ({"question": "问" * 501}, "500"),
        ({}, "empty"),
        ({"question": 42}, "问题不能为空"),
        ({"question": "q", "history": "not a list"}, "invalid request"),
    ],
)
def test_ask_validation(http: httpx.Client, body: dict[str, object], needle: str) -> None:
    r = http.post("/api/ask", json=body)
    assert r.status_code in (400, 422), r.text
    assert needle in r.json()["detail"]


def test_ask_malformed_json(http: httpx.Client) -> None:
    r = http.post("/api/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "请求格式错误" in r.json()["detail"]


def test_unknown_district_lists_the_held_ones(http: httpx.Client) -> None:
    r = http.post("/api/ask", json={"question": ASK, "district": "徐汇区"})
    assert r.status_code == 400
    body = r.json()
    assert body["districts"] == ["金山区", "静安区"]
    assert "徐汇区" in body["detail"] and "金山区、静安区" in body["detail"] and "unknown district" in body["detail"]


def test_followups_keep_the_scope(http: httpx.Client) -> None:
    first = "金山区如何推进“一网通办”？"
    switched = http.post("/api/ask", json={"question": "那静安区呢？", "history": [first]}).json()
    assert switched["question"] == "那静安区呢？"
    assert switched["rewritten_question"].startswith("静安区") and "一网通办" in switched["rewritten_question"]
    assert switched["citations"] and {c["district"] for c in switched["citations"]} == {"静安区"}
    stay = http.post("/api/ask", json={"question": "它的考核要求是什么", "history": [first]}).json()
    assert stay["rewritten_question"] == "金山区的考核要求是什么" and stay["scope"] == "金山区"
    assert {c["district"] for c in stay["citations"]} <= {"金山区"}


def test_refusal_shows_nearest_passages(http: httpx.Client) -> None:
    obj = http.post("/api/ask", json={"question": "浦东新区的法治政府建设有哪些主要任务？"}).json()
    assert obj["abstained"] and not obj["citations"] and obj["retrieved"]
    assert "浦东新区" in obj["answer"]


def test_html_question_comes_back_inert(http: httpx.Client) -> None:
    q = "<script>alert('x')</script><img src=x onerror=alert(1)>金山区如何推进“一网通办”？"
    r = http.post("/api/ask", json={"question": q})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in r.text and "<img" not in r.text  # escaped as \u003c in the raw body
    assert r.json()["question"] == q  # … and intact as data


def test_documents(http: httpx.Client) -> None:
    docs = http.get("/api/documents").json()["documents"]
    assert len(docs) == 2
    for d in docs:
        assert {"doc_id", "title", "district", "chunks", "source", "ingested_at"} <= set(d)
        assert "path" not in d  # no server paths leak
    assert sorted(d["district"] for d in docs) == ["金山区", "静安区"]


def test_feedback_endpoint(http: httpx.Client, live: Live) -> None:
    obj = http.post("/api/ask", json={"question": ASK}).json()
    r = http.post("/api/feedback", json={"rating": "up", "comment": "准确", "answer": obj})
    assert r.status_code == 200 and r.json()["id"] >= 1
    assert http.post("/api/feedback", json={"rating": "so-so", "answer": obj}).status_code == 400
    assert (live.settings.data_dir / "feedback.sqlite").is_file()


def test_parallel_asks_all_succeed(http: httpx.Client) -> None:
    questions = [
        ASK,
        "金山区如何推进“一网通办”？",
        "“十三五”末金山区行政机关负责人出庭应诉率是多少？",
        "两个区对行政机关负责人出庭应诉有什么要求？",
    ] * 2

    def ask(q: str) -> httpx.Response:
        return http.post("/api/ask", json={"question": q})

    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(ask, questions))
    assert [r.status_code for r in results] == [200] * 8
    assert all(not r.json()["abstained"] and r.json()["citations"] for r in results)
    assert time.perf_counter() - t0 < 60


# -- OpenAI-compatible ---------------------------------------------------------------------------


def _openai(live: Live):  # type: ignore[no-untyped-def]
    from openai import OpenAI

    return OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0, timeout=60)


def test_openai_models(live: Live) -> None:
    assert [m.id for m in _openai(live).models.list()] == ["zhengce-extractive"]


def test_openai_chat_non_stream(live: Live) -> None:
    resp = _openai(live).chat.completions.create(
        model="zhengce-extractive", messages=[{"role": "user", "content": ASK}]
    )
    text = resp.choices[0].message.content or ""
    assert "[1]" in text and "参考来源" in text and " › " in text
    assert resp.choices[0].finish_reason == "stop" and resp.object == "chat.completion"
    cites = (resp.model_extra or {})["citations"]
    assert cites and cites[0]["district"] == "静安区" and cites[0]["quote"]


def test_openai_chat_stream(live: Live) -> None:
    stream = _openai(live).chat.completions.create(
        model="zhengce-extractive", messages=[{"role": "user", "content": ASK}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3 and "[1]" in text and "参考来源" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert any((c.model_extra or {}).get("citations") for c in chunks)


def test_openai_stream_wire_format(http: httpx.Client) -> None:
    body = {"model": "x", "stream": True, "messages": [{"role": "user", "content": ASK}]}
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    first = json.loads(events[0].removeprefix("data: "))
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["role"] == "assistant"


def test_openai_history_is_the_earlier_user_messages(live: Live) -> None:
    resp = _openai(live).chat.completions.create(
        model="zhengce-extractive",
        messages=[
            {"role": "system", "content": "你是政策助手"},
            {"role": "user", "content": "金山区如何推进“一网通办”？"},
            {"role": "assistant", "content": "…[1]"},
            {"role": "user", "content": [{"type": "text", "text": "那静安区呢？"}]},
        ],
    )
    cites = (resp.model_extra or {})["citations"]
    assert cites and {c["district"] for c in cites} == {"静安区"}


def test_openai_errors_use_the_openai_shape(live: Live) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as e:
        _openai(live).chat.completions.create(model="m", messages=[{"role": "assistant", "content": "hi"}])
    assert "last message" in str(e.value)
    with pytest.raises(openai.UnprocessableEntityError):
        _openai(live).chat.completions.create(model="m", messages=[{"role": "user", "content": ""}])


# -- admin -------------------------------------------------------------------------------------


def _wait(http: httpx.Client, job_id: int) -> dict[str, object]:
    for _ in range(600):
        job = http.get(f"/api/admin/jobs/{job_id}", headers={"X-Admin-Password": PASSWORD}).json()["job"]
        if not job["active"]:
            return job  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError("job did not finish")


def test_admin_upload_list_ask_delete(http: httpx.Client, live: Live) -> None:
    auth = {"X-Admin-Password": PASSWORD}
    files = {"files": ("fengxian_plan.txt", UPLOAD_TEXT.encode("utf-8"), "text/plain")}
    r = http.post("/api/admin/documents", files=files, headers=auth)
    assert r.status_code == 200, r.text
    job = _wait(http, r.json()["job"]["id"])
    assert job["state"] == "done", job
    assert (live.settings.data_dir / "uploads" / "fengxian_plan.txt").is_file()
    docs = {d["source"]: d for d in http.get("/api/documents").json()["documents"]}
    assert docs["fengxian_plan.txt"]["uploaded"] and docs["fengxian_plan.txt"]["chunks"] >= 1
    # Queries see the new generation without a restart.
    obj = http.post("/api/ask", json={"question": "公共数据资源目录编制什么时候完成？"}).json()
    assert not obj["abstained"] and obj["citations"][0]["source"] == "fengxian_plan.txt"

    r = http.delete(f"/api/admin/documents/{docs['fengxian_plan.txt']['doc_id']}", headers=auth)
    assert r.status_code == 200
    assert _wait(http, r.json()["job"]["id"])["state"] == "done"
    assert "fengxian_plan.txt" not in {d["source"] for d in http.get("/api/documents").json()["documents"]}
    assert not (live.settings.data_dir / "uploads" / "fengxian_plan.txt").exists()
    assert http.get("/healthz").json()["documents"] == 2


def test_admin_needs_the_password(http: httpx.Client) -> None:
    files = {"files": ("a.txt", "正文".encode() * 20, "text/plain")}
    assert http.post("/api/admin/documents", files=files).status_code == 401
    r = http.post("/api/admin/documents", files=files, headers={"X-Admin-Password": "wrong"})
    assert r.status_code == 401 and "管理密码错误" in r.json()["detail"]
    assert http.post("/api/admin/reindex", headers={"X-Admin-Password": "wrong"}).status_code == 401
    assert http.delete("/api/admin/documents/abc").status_code == 401


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "..\\evil.txt", ".hidden.txt", "a\x01b.txt"])
def test_upload_names_cannot_escape(http: httpx.Client, live: Live, name: str) -> None:
    files = {"files": (name, "奉贤区正文内容足够长，二十个字以上的测试文本。".encode(), "text/plain")}
    r = http.post("/api/admin/documents", files=files, headers={"X-Admin-Password": PASSWORD})
    assert r.status_code == 400, r.text
    assert "文件名不合法" in r.json()["detail"]
    assert not list(live.settings.data_dir.parent.rglob("*evil*"))  # nothing written, inside or outside


def test_upload_type_and_size_limits(http: httpx.Client) -> None:
    auth = {"X-Admin-Password": PASSWORD}
    r = http.post(
        "/api/admin/documents", files={"files": ("tool.exe", b"MZ...", "application/octet-stream")}, headers=auth
    )
    assert r.status_code == 400 and "不支持的文件类型" in r.json()["detail"]
    big = ("一" * (1024 * 1024 // 3 + 10)).encode()  # > max_upload_mb=1
    r = http.post("/api/admin/documents", files={"files": ("big.txt", big, "text/plain")}, headers=auth)
    assert r.status_code == 400 and "文件过大" in r.json()["detail"] and "1 MB" in r.json()["detail"]


def test_admin_disabled_without_password(plans_settings: Settings, pipeline: Pipeline) -> None:
    settings = plans_settings.with_changes(admin_password=None)
    admin = Admin(settings, lambda: pipeline)
    assert not admin.enabled
    with pytest.raises(AdminDisabledError, match="RAG_ADMIN_PASSWORD"):
        admin.check_password("anything")
    with running(create_api(lambda: pipeline, settings, admin=admin)) as url:
        r = httpx.post(f"{url}/api/admin/reindex", headers={"X-Admin-Password": "anything"})
        assert r.status_code == 403 and "RAG_ADMIN_PASSWORD" in r.json()["detail"]
        assert httpx.get(f"{url}/healthz").json()["admin"] is False


# -- text that cannot be encoded ------------------------------------------------------------------

LONE = "\ud800"  # a lone surrogate: valid in a JSON escape, not valid Unicode text


def _raw(body: dict[str, object]) -> bytes:
    """JSON with the surrogate as a \\ud800 escape, as a hostile client sends it (httpx's own
    encoder cannot encode it)."""
    return json.dumps(body, ensure_ascii=True).encode("ascii")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/ask", {"question": f"{LONE}abc"}, "question"),
        ("/api/ask", {"question": ASK, "district": f"金山区{LONE}"}, "district"),
        ("/api/ask", {"question": ASK, "history": [f"那{LONE}呢"]}, "history"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": f"{LONE}金山区"}]}, "messages"),
        (
            "/v1/chat/completions",
            {"stream": True, "messages": [{"role": "user", "content": [{"type": "text", "text": f"x{LONE}"}]}]},
            "messages",
        ),
        (
            "/api/feedback",
            {"rating": "up", "comment": f"好{LONE}", "answer": {"question": "q", "answer": "a"}},
            "comment",
        ),
    ],
)
def test_unencodable_text_is_a_400_and_the_connection_survives(
    live: Live, path: str, body: dict[str, object], field: str
) -> None:
    with httpx.Client(base_url=live.url, timeout=60) as c:  # one keep-alive connection for both requests
        r = c.post(path, content=_raw(body), headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        message = r.json()["error"]["message"] if path.startswith("/v1/") else r.json()["detail"]
        assert "无法编码" in message and "cannot be encoded" in message and field in message and "U+D800" in message
        ok = c.post("/api/ask", json={"question": ASK})
        assert ok.status_code == 200 and not ok.json()["abstained"]
