"""`rag eval`: run a JSONL question set through one loaded pipeline and score it.

Dataset lines: {"id", "question", "keys"?, "gold"?, "gold_all"?, "district"?, "kind"?}; a key that
is a list means any one of its strings is enough; kind "unanswerable" must abstain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.cite import answer_dict
from rag.core.errors import InputError
from rag.core.places import gazetteer
from rag.core.text import normalise, place_stem
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


_PUNCT = re.compile(r"[\W_]+")


def _mrc_chars(text: str) -> str:
    """CMRC 2018's comparison form: lower-cased, without punctuation and whitespace, compared
    character by character."""
    return _PUNCT.sub("", normalise(text))


def _lcs(a: str, b: str) -> int:
    """Length of the longest common substring."""
    best = 0
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0] * (len(b) + 1)
        for j, cb in enumerate(b, 1):
            if ca == cb:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def em_f1(prediction: str, golds: list[str]) -> tuple[float, float]:
    """CMRC 2018's official EM and F1 (longest-common-substring F1), the max over the golds."""
    pred = _mrc_chars(prediction)
    em = f1 = 0.0
    for g in (_mrc_chars(x) for x in golds):
        if not g:
            continue
        em = max(em, float(pred == g))
        common = _lcs(pred, g)
        if common:
            p, r = common / len(pred), common / len(g)
            f1 = max(f1, 2 * p * r / (p + r))
    return em, f1


def span_golds(row: dict[str, Any]) -> list[str]:
    """Gold answer spans: a reading-comprehension line's "answers", else a single required key's
    alternatives; none for lines that need several keys."""
    if row.get("answers"):
        return [str(a) for a in row["answers"]]
    keys = row.get("keys") or []
    if len(keys) == 1:
        return [str(k) for k in (keys[0] if isinstance(keys[0], list) else [keys[0]])]
    return []


def prediction(ans: dict[str, Any]) -> str:
    """What EM/F1 score: the answer span when there is one, else the answer without markers."""
    return str(ans.get("answer_span") or re.sub(r"\[\d+\]", "", ans["answer"]))


def gold_rank(texts: list[str], golds: list[str]) -> int | None:
    """0-based rank of the first text containing any gold passage substring."""
    gs = [normalise(g) for g in golds if g]
    for r, t in enumerate(texts):
        nt = normalise(t)
        if any(g in nt for g in gs):
            return r
    return None


def _confused(row: dict[str, Any], ans: dict[str, Any]) -> bool:
    """The question names a place and a citation comes from a place neither inside nor above it.
    An unscoped question is answered per place by design (beside the regulations, 浦东新区's own
    "一业一证" rules rightly answer "“一业一证”改革是什么意思？")."""
    named = row.get("district") or row.get("place")
    if not isinstance(named, str) or not named:
        return False
    if named not in row["question"] and place_stem(named) not in row["question"]:
        return False
    g = gazetteer()
    targets = g.named(named)
    for c in ans["citations"]:
        cited = c.get("district")
        if not cited or cited == named:
            continue
        places = g.named(cited)
        if not any(g.within(p, t) or g.within(t, p) for p in places for t in targets):
            return True
    return False


@dataclass
class Judged:
    row: dict[str, Any]
    result: dict[str, Any]
    answerable: bool
    answer_ok: bool
    citation_ok: bool
    rank: int | None
    confused: bool
    em: float | None = None  # None: abstained, unanswerable, or no single gold span
    f1: float | None = None


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
    confused = _confused(row, ans)
    golds_span = span_golds(row) if not unanswerable else []
    em, f1 = em_f1(prediction(ans), golds_span) if golds_span and not ans["abstained"] else (None, None)
    if golds_span and ans["abstained"]:
        em, f1 = 0.0, 0.0
    return Judged(row, ans, not unanswerable, answer_ok, citation_ok, rank, confused, em, f1)


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

        spans = [x for x in ans if x.em is not None]
        answered = [x for x in ans if not x.result["abstained"]]
        return {
            "questions": len(j),
            "answer_accuracy": rate(ans, lambda x: x.answer_ok),
            "exact_match": float(np.mean([x.em for x in spans])) if spans else float("nan"),
            "f1": float(np.mean([x.f1 for x in spans])) if spans else float("nan"),
            "answer_chars": float(np.mean([len(prediction(x.result)) for x in answered])) if answered else float("nan"),
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
    if key.startswith("latency") or key == "answer_chars":
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


def is_blind(name: str) -> bool:
    """A set nobody tunes on: its failures are never printed where the team reads results."""
    return "blind" in name


def markdown_report(reports: list[Report], *, sealed: bool = False) -> str:
    """The metrics table, then each set's failures. Blind sets' failures are left out (only their
    count is shown) unless `sealed`, the separate file nobody reads while tuning."""
    out = ["# Evaluation report", "", markdown_table(reports), ""]
    for r in reports:
        reasons = r.fallback_reasons()
        if reasons:
            out += [f"## LLM fallbacks: {r.name}", "", *(f"- {c}: {n}" for c, n in reasons.items()), ""]
        fails = r.failures()
        out.append(f"## Failures: {r.name} ({len(fails)})")
        out.append("")
        if is_blind(r.name) and not sealed:
            out += ["(blind set: failures are written to the sealed report only)", ""]
            continue
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
