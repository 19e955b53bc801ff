"""The eval sets are data the metrics rest on: every gold passage and key must be text of the plans."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

from conftest import DOCS

EVAL = Path(__file__).resolve().parent.parent / "eval"
FILES = ("qa.jsonl", "qa_holdout.jsonl", "qa_blind.jsonl")


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", re.sub(r"\s+", "", text))


def test_eval_lines_are_grounded_in_the_plans() -> None:
    plans = {"金山区": _norm(next(DOCS.glob("jinshan*")).read_text("utf-8"))}
    plans["静安区"] = _norm(next(DOCS.glob("jingan*")).read_text("utf-8"))
    ids: set[str] = set()
    for name in FILES:
        for line in (EVAL / name).read_text("utf-8").splitlines():
            row = json.loads(line)
            assert row["id"] not in ids, row["id"]
            ids.add(row["id"])
            if row.get("kind") == "unanswerable":
                assert not row.get("keys") and not row.get("gold"), row["id"]
                continue
            texts = [plans[row["district"]]] if row.get("district") else list(plans.values())
            assert any(_norm(row["gold"]) in t for t in texts), row["id"]
            for key in row["keys"]:
                options = key if isinstance(key, list) else [key]
                assert any(_norm(o) in t for o in options for t in texts), (row["id"], key)
    assert len(ids) >= 264
