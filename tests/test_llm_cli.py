"""`rag ask --llm` streaming, `rag eval --llm` and the API's LLM follow-up rewrite against the scripted
server (needs the evaluate.py and api.py changes proposed with rag/llm.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.cli import main
from rag.core.settings import Settings
from rag.index.embed import Embedder

try:
    from fake_llm import FakeLLM, Reply, running
except ImportError:
    from .fake_llm import FakeLLM, Reply, running

Q = "金山区的行政复议体制改革要在什么时候完成？"
GOOD = "金山区将在2022年前基本形成公正权威、统一高效的行政复议工作体制[1]。"
UNANSWERABLE = "浦东新区法治政府建设“十四五”规划要求什么时候完成行政执法证件换发？"


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch, plans_settings: Settings) -> Iterator[FakeLLM]:
    with running() as server:
        monkeypatch.setenv("RAG_INDEX_DIR", str(plans_settings.index_dir))
        monkeypatch.setenv("RAG_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("RAG_LLM_MODEL", "fake")
        monkeypatch.setenv("RAG_LLM_TIMEOUT", "1")
        yield server


def test_ask_streams_tokens(fake: FakeLLM, capsys: pytest.CaptureFixture[str]) -> None:
    fake.reset(Reply(GOOD))
    assert main(["ask", "--llm", Q]) == 0
    out = capsys.readouterr().out
    assert out.startswith(GOOD + "\n") and "[1] 《金山区法治政府建设“十四五”规划》" in out
    assert fake.requests[0]["stream"] is True


def test_ask_stream_rejected_is_replaced(fake: FakeLLM, capsys: pytest.CaptureFixture[str]) -> None:
    fake.reset(Reply(GOOD.replace("2022", "2030")))
    assert main(["ask", "--llm", Q]) == 0
    out = capsys.readouterr().out
    assert "2030" in out and "已改用摘录答案" in out and "ungrounded_figure" in out
    assert "按照上级机关工作部署" in out.split("已改用摘录答案")[1]


def test_ask_json_has_mode(fake: FakeLLM, capsys: pytest.CaptureFixture[str]) -> None:
    fake.reset(Reply("x", status=500))
    assert main(["ask", "--llm", "--json", Q]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["mode"] == "extractive" and obj["fallback_reason"].startswith("http_500")
    fake.reset()
    assert main(["ask", "--json", Q]) == 0  # no --llm: extractive
    obj = json.loads(capsys.readouterr().out)
    assert obj["mode"] == "extractive" and obj["fallback_reason"] is None and fake.requests == []


def test_eval_llm_reports_fallback_rate(fake: FakeLLM, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "qa.jsonl"
    rows = [
        {"id": "a", "question": Q, "keys": ["2022年"], "kind": "date"},
        {"id": "b", "question": Q, "keys": ["2022年"], "kind": "date"},
        {"id": "c", "question": UNANSWERABLE, "kind": "unanswerable"},
    ]
    ds.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), "utf-8")
    fake.reset(Reply(GOOD), Reply(GOOD.replace("[1]", "[7]")))
    report = tmp_path / "report.md"
    assert main(["eval", "--llm", str(ds), "--out", str(tmp_path / "r.jsonl"), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "| fallback_rate | 0.500 |" in out and "| answer_accuracy | 1.000 |" in out
    assert "marker_out_of_range: 1" in report.read_text("utf-8")
    modes = [json.loads(line)["mode"] for line in (tmp_path / "r.jsonl").read_text("utf-8").splitlines()]
    assert modes == ["llm", "extractive", "extractive"] and len(fake.requests) == 2
    assert main(["eval", str(ds), "--report", str(report)]) == 0  # no --llm: extractive, n/a
    assert "| fallback_rate | n/a |" in capsys.readouterr().out and len(fake.requests) == 2


def test_eval_llm_needs_an_endpoint(monkeypatch: pytest.MonkeyPatch, plans_settings: Settings, tmp_path: Path) -> None:
    monkeypatch.delenv("RAG_LLM_BASE_URL", raising=False)
    monkeypatch.setenv("RAG_INDEX_DIR", str(plans_settings.index_dir))
    monkeypatch.delenv("RAG_LLM_MODEL", raising=False)
    assert main(["eval", "--llm", str(tmp_path / "x.jsonl")]) == 2


def test_api_rewrites_follow_ups_with_the_llm(plans_settings: Settings, embedder: Embedder) -> None:

    from rag.answer.pipeline import Pipeline
    from rag.llm.generator import LLMGenerator
    from rag.serve.api import answer_question

    with running() as server:
        s = plans_settings.with_changes(llm_base_url=server.base_url, llm_model="fake", llm_timeout_s=1.0)
        pipe = Pipeline(s, embedder, generator=LLMGenerator(s))
        server.reset(Reply("静安区的行政复议体制改革要在什么时候完成？"), Reply("x", status=500))
        obj = answer_question(pipe, "那静安区呢？", [Q])
        assert obj["rewritten_question"] == "静安区的行政复议体制改革要在什么时候完成？"
        assert obj["question"] == "那静安区呢？" and "2022年底前" in obj["answer"]
        assert obj["citations"][0]["district"] == "静安区" and obj["fallback_reason"].startswith("http_500")
        assert len(server.requests) == 2
