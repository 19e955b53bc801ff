"""The 时间表: dated commitments extracted from plan chunks, `rag facts` and GET /api/facts."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # app.py sits beside the installed `rag` package
from app import running
from rag.answer.pipeline import Pipeline
from rag.cli import main
from rag.core.errors import InputError
from rag.core.settings import Settings
from rag.core.types import Document, content_hash
from rag.ingest.chunk import chunk_document
from rag.ingest.facts import Fact, extract_facts, filter_facts
from rag.serve.api import create_api

PLAN = """奉贤区数字政府建设“十四五”规划

一、发展现状

（一）“十三五”成效

“十三五”期间，奉贤区于2019年底前建成了政务服务中心，每年组织培训3次。

二、主要任务

（一）2022年重点工作

1. 推进数据共享。年底前完成全区公共数据资源目录编制。

2. 加强执法培训。每年开展执法人员培训不少于40学时。

（二）长期目标

1. 建成一网统管。到2025年，城市运行“一网统管”覆盖率达到100%。

2. 强化评估。由区大数据中心牵头，2023年6月底前完成中期评估。

3. 完善制度。区政府办定期向区人大常委会报告工作情况。

4. 优化服务。“十四五”期间，持续优化营商环境。

5. 回顾经验。2021年已完成数据平台一期建设。
"""


def _doc(text: str = PLAN, district: str = "奉贤区") -> Document:
    return Document(
        id=content_hash(text), source="fx.txt", title="奉贤区数字政府建设“十四五”规划", text=text, district=district
    )


@pytest.fixture(scope="module")
def facts() -> list[Fact]:
    return extract_facts(chunk_document(_doc()))


def _one(facts: list[Fact], needle: str) -> Fact:
    hits = [f for f in facts if needle in f.text]
    assert len(hits) == 1, [f.text for f in facts]
    return hits[0]


def test_yearless_year_end_takes_the_year_of_its_heading(facts: list[Fact]) -> None:
    f = _one(facts, "年底前完成全区公共数据资源目录编制")
    assert (f.kind, f.year, f.month) == ("before", 2022, 12)
    assert f.task == "推进数据共享" and f.place == "奉贤区"
    assert f.section_path[-2] == "（一）2022年重点工作"


def test_every_year_with_a_target(facts: list[Fact]) -> None:
    f = _one(facts, "每年开展执法人员培训")
    assert (f.kind, f.year, f.month) == ("every_year", None, None)
    assert f.target == "不少于40学时"


def test_by_a_year_with_a_coverage_target(facts: list[Fact]) -> None:
    f = _one(facts, "一网统管”覆盖率")
    assert (f.kind, f.year, f.month) == ("by", 2025, None)
    assert f.target == "覆盖率达到100%"


def test_lead_unit_named_by_qiantou_and_mid_year_month(facts: list[Fact]) -> None:
    f = _one(facts, "中期评估")
    assert (f.kind, f.year, f.month) == ("before", 2023, 6)
    assert f.lead == "区大数据中心"


def test_lead_unit_as_the_subject(facts: list[Fact]) -> None:
    f = _one(facts, "定期向区人大常委会报告")
    assert f.kind == "every_year" and f.lead == "区政府办"


def test_plan_period(facts: list[Fact]) -> None:
    f = _one(facts, "持续优化营商环境")
    assert (f.kind, f.year) == ("plan_period", None)


def test_retrospective_sections_and_past_tense_are_skipped(facts: list[Fact]) -> None:
    texts = " ".join(f.text for f in facts)
    assert "十三五" not in texts and "2019" not in texts and "政务服务中心" not in texts
    assert "数据平台一期" not in texts  # 已完成: an achievement, not a commitment
    assert len(facts) == 6


def test_to_dict_is_json_ready(facts: list[Fact]) -> None:
    d = _one(facts, "中期评估").to_dict()
    assert json.loads(json.dumps(d, ensure_ascii=False))["section"] == "二、主要任务 › （二）长期目标 › 2. 强化评估"
    assert d["section_path"][-1].endswith("强化评估") and d["doc_id"] == _doc().id


def test_filters(facts: list[Fact]) -> None:
    assert {f.year for f in filter_facts(facts, year=2022)} == {2022}
    due = filter_facts(facts, before="2023-06")
    assert {(f.year, f.month) for f in due} == {(2022, 12), (2023, 6)}
    assert filter_facts(facts, place="奉贤") == filter_facts(facts, place="奉贤区") == facts
    assert filter_facts(facts, place="金山区") == []
    with pytest.raises(InputError, match="YYYY-MM"):
        filter_facts(facts, before="2023年6月")


def test_cli_facts_on_the_plans_index(plans_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    index = str(plans_settings.index_dir)
    assert main(["facts", "--json", "--index", index]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["place"] for r in rows} == {"金山区", "静安区"}
    assert all(r["year"] is None or r["year"] > 2020 for r in rows)
    assert not any("十三五" in r["section"] or r["section"].startswith("一、") for r in rows)
    assert main(["facts", "--csv", "--place", "静安区", "--before", "2023-12", "--index", index]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert table and {r["place"] for r in table} == {"静安区"}
    assert all((int(r["year"]), int(r["month"] or 12)) <= (2023, 12) for r in table)
    assert main(["facts", "--before", "soon", "--index", index]) == 2
    assert "YYYY-MM" in capsys.readouterr().err


def test_api_facts(plans_settings: Settings, pipeline: Pipeline) -> None:
    with running(create_api(lambda: pipeline, plans_settings)) as url, httpx.Client(base_url=url) as http:
        rows = http.get("/api/facts", params={"place": "金山", "year": 2022}).json()["facts"]
        assert rows and {(r["place"], r["year"]) for r in rows} == {("金山区", 2022)}
        assert all(r["kind"] in ("before", "by", "during") for r in rows)
        r = http.get("/api/facts", params={"before": "2022/12"})
        assert r.status_code == 400 and "YYYY-MM" in r.json()["detail"]
