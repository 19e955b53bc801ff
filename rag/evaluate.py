"""`rag eval`: run a JSONL question set through one loaded pipeline and score it.

Dataset lines: {"id", "question", "keys"?, "gold"?, "gold_all"?, "district"?, "kind"?}; a key that
is a list means any one of its strings is enough; kind "unanswerable" must abstain.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.cite import answer_dict
from rag.core.errors import InputError
from rag.core.text import normalise
from rag.core.types import Answer


def load_dataset(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: 无法读取评测集 (cannot read dataset: {e})") from e
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{i}: 不是合法的 JSON (invalid JSON: {e.msg})") from e
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise InputError(f'{path}:{i}: 缺少 question 字段 (line needs a "question" string)')
        row.setdefault("id", f"line-{i}")
        rows.append(row)
    return rows


def keys_ok(answer: str, keys: Iterable[Any]) -> bool:
    a = normalise(answer)
    for k in keys:
        options = k if isinstance(k, list) else [k]
        if not any(normalise(str(o)) in a for o in options):
            return False
    return True


def gold_rank(texts: list[str], golds: list[str]) -> int | None:
    """0-based rank of the first text containing any gold passage substring."""
    gs = [normalise(g) for g in golds if g]
    for r, t in enumerate(texts):
        nt = normalise(t)
        if any(g in nt for g in gs):
            return r
    return None


@dataclass
class Judged:
    row: dict[str, Any]
    result: dict[str, Any]
    answerable: bool
    answer_ok: bool
    citation_ok: bool
    rank: int | None
    confused: bool


def judge(row: dict[str, Any], ans: dict[str, Any]) -> Judged:
    unanswerable = row.get("kind") == "unanswerable"
    golds = list(row.get("gold_all") or ([row["gold"]] if row.get("gold") else []))
    cited = [c["text"] for c in ans["citations"]]
    if unanswerable:
        answer_ok = bool(ans["abstained"])
        citation_ok = answer_ok
    else:
        answer_ok = not ans["abstained"] and keys_ok(ans["answer"], row.get("keys", []))
        citation_ok = not ans["abstained"] and all(gold_rank(cited, [g]) is not None for g in golds)
    rank = gold_rank([h["text"] for h in ans["retrieved"]], golds) if golds else None
    district = row.get("district")
    # Confusion: the question names a district and a citation comes from another. An unscoped
    # question is answered per district by design (beside the regulations, 浦东新区's own
    # "一业一证" rules rightly answer "“一业一证”改革是什么意思？").
    named = (
        isinstance(district, str)
        and bool(district)
        and (district in row["question"] or district.removesuffix("区") in row["question"])
    )
    confused = named and any(c["district"] and c["district"] != district for c in ans["citations"])
    return Judged(row, ans, not unanswerable, answer_ok, citation_ok, rank, confused)


@dataclass
class Report:
    name: str
    judged: list[Judged] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        j = self.judged
        ans = [x for x in j if x.answerable]
        una = [x for x in j if not x.answerable]
        with_gold = [x for x in ans if x.row.get("gold") or x.row.get("gold_all")]
        abstained = [x for x in j if x.result["abstained"]]
        lat = [x.result["timings_ms"]["total"] for x in j]
        llm_asked = [x for x in j if x.result.get("mode") == "llm" or x.result.get("fallback_reason")]

        def rate(xs: list[Judged], f: Callable[[Judged], bool]) -> float:
            return sum(1 for x in xs if f(x)) / len(xs) if xs else float("nan")

        return {
            "questions": len(j),
            "answer_accuracy": rate(ans, lambda x: x.answer_ok),
            "citation_accuracy": rate(ans, lambda x: x.citation_ok),
            "recall@1": rate(with_gold, lambda x: x.rank is not None and x.rank < 1),
            "recall@5": rate(with_gold, lambda x: x.rank is not None and x.rank < 5),
            "mrr@10": float(
                np.mean([1 / (x.rank + 1) if x.rank is not None and x.rank < 10 else 0.0 for x in with_gold])
            )
            if with_gold
            else float("nan"),
            "refusal_precision": rate(abstained, lambda x: not x.answerable),
            "refusal_recall": rate(una, lambda x: x.answer_ok),
            "district_confusion": float(sum(1 for x in j if x.confused)),
            # LLM mode: the share of answers the LLM was asked for that fell back to extractive.
            "fallback_rate": rate(llm_asked, lambda x: x.result.get("mode") != "llm"),
            "latency_p50_ms": float(np.percentile(lat, 50)) if lat else float("nan"),
            "latency_p95_ms": float(np.percentile(lat, 95)) if lat else float("nan"),
        }

    def fallback_reasons(self) -> dict[str, int]:
        """How often each fallback code occurred (the text before the first colon)."""
        codes = [str(x.result["fallback_reason"]).split(":")[0] for x in self.judged if x.result.get("fallback_reason")]
        return {c: codes.count(c) for c in sorted(set(codes), key=lambda c: -codes.count(c))}

    def failures(self) -> list[Judged]:
        return [x for x in self.judged if not (x.answer_ok and x.citation_ok) or x.confused]


def run_eval(ask: Callable[[str], Answer], rows: list[dict[str, Any]], name: str) -> Report:
    report = Report(name)
    for row in rows:
        ans = answer_dict(ask(row["question"]))
        ans["id"] = row["id"]
        report.judged.append(judge(row, ans))
    return report


def fmt(v: float, key: str) -> str:
    if key in ("questions", "district_confusion"):
        return str(int(v))
    if key.startswith("latency"):
        return f"{v:.1f}"
    return "n/a" if v != v else f"{v:.3f}"


def markdown_table(reports: list[Report]) -> str:
    ms = [r.metrics() for r in reports]
    keys = list(ms[0]) if ms else []
    lines = ["| metric | " + " | ".join(r.name for r in reports) + " |", "|---|" + "---|" * len(reports)]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(fmt(m[k], k) for m in ms) + " |")
    return "\n".join(lines)


def write_results(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for x in report.judged:
            f.write(json.dumps(x.result, ensure_ascii=False) + "\n")


def markdown_report(reports: list[Report]) -> str:
    out = ["# Evaluation report", "", markdown_table(reports), ""]
    for r in reports:
        reasons = r.fallback_reasons()
        if reasons:
            out += [f"## LLM fallbacks: {r.name}", "", *(f"- {c}: {n}" for c, n in reasons.items()), ""]
        fails = r.failures()
        out.append(f"## Failures: {r.name} ({len(fails)})")
        out.append("")
        for x in fails[:60]:
            why = []
            if not x.answer_ok:
                why.append("answer")
            if not x.citation_ok:
                why.append("citation")
            if x.confused:
                why.append("district")
            ans = x.result["answer"].replace("\n", " / ")[:160]
            out.append(f"- `{x.row['id']}` ({x.row.get('kind', '')}; {', '.join(why)}): {x.row['question']} → {ans}")
        out.append("")
    return "\n".join(out)
