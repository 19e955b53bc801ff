"""The command line as scripts use it: exit codes, --json, eval tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DOCS

from rag.cli import main
from rag.core.settings import Settings


def test_ask_json(plans_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ask", "静安区审批办结时限压减了多少？", "--json", "--index", str(plans_settings.index_dir)])
    assert rc == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["question"] == "静安区审批办结时限压减了多少？"
    assert "88.75%" in obj["answer"] and obj["citations"][0]["district"] == "静安区"


def test_missing_index_is_a_clear_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ask", "任何问题", "--index", str(tmp_path / "nothing")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "rag ingest" in err and "索引不存在" in err


def test_info_lists_documents(plans_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--index", str(plans_settings.index_dir)]) == 0
    out = capsys.readouterr().out
    assert "金山区法治政府建设“十四五”规划" in out and "静安区" in out


def test_chunks_shows_section_paths(capsys: pytest.CaptureFixture[str]) -> None:
    f = DOCS / "jinshan_law_based_government_plan_2021-2025.txt"
    assert main(["chunks", str(f), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    sections = [r["section"] for r in rows]
    assert any(s.endswith("18. 落实行政复议体制改革") and s.startswith("三、主要任务") for s in sections)


def test_eval_scores_and_reports(plans_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "mini.jsonl"
    lines = [
        {
            "id": "a",
            "question": "静安区审批办结时限压减了多少？",
            "keys": ["88.75%"],
            "gold": "审批办结时限压减88.75%",
            "district": "静安区",
        },
        {"id": "b", "question": "红烧肉怎么做？", "keys": [], "kind": "unanswerable"},
        {"id": "c", "question": "静安区审批办结时限压减了多少？", "keys": ["99.99%"], "gold": "不存在的句子"},
    ]
    ds.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), "utf-8")
    out, report = tmp_path / "res.jsonl", tmp_path / "report.md"
    rc = main(["eval", str(ds), "--out", str(out), "--report", str(report), "--index", str(plans_settings.index_dir)])
    assert rc == 0
    table = capsys.readouterr().out
    assert "| answer_accuracy | 0.500 |" in table  # a right, c wrong
    assert "| refusal_recall | 1.000 |" in table
    results = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [r["id"] for r in results] == ["a", "b", "c"]
    assert "`c`" in report.read_text("utf-8")


def test_eval_rejects_bad_dataset(plans_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "bad.jsonl"
    ds.write_text('{"question": "ok"}\nnot json\n', "utf-8")
    assert main(["eval", str(ds), "--index", str(plans_settings.index_dir), "--report", ""]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
