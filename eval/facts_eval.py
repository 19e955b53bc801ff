"""Score the 时间表 extractor (rag.ingest.facts) against the hand-labelled eval/facts_gold.jsonl.

The two bundled plans are loaded and chunked (no embedding). A gold row is found when its `key`
(whitespace removed) is inside an extracted row's text of the same place; precision counts the
extracted rows that match some gold row. Field accuracy is over the matched pairs.

    .venv/bin/python eval/facts_eval.py [--gold eval/facts_gold.jsonl] [--docs data/docs]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rag.core.text import normalise
from rag.ingest.chunk import chunk_document
from rag.ingest.facts import Fact, extract_facts
from rag.ingest.load import load_document

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("year", "month", "kind", "place", "lead", "target")


def _norm(v: Any) -> Any:
    return normalise(v, fold_case=False) if isinstance(v, str) and v.strip() else (v if v != "" else None)


def _gold_value(row: dict[str, Any], field: str) -> Any:
    if field == "place":
        return row.get("place", row.get("district"))
    return row.get(field)


def score(facts: list[Fact], gold: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision, recall and per-field accuracy of extracted facts against gold rows."""
    texts = [normalise(f.text, fold_case=False) for f in facts]
    used: set[int] = set()
    pairs: list[tuple[dict[str, Any], Fact]] = []
    missed: list[dict[str, Any]] = []
    for g in gold:
        key = normalise(g["key"], fold_case=False)
        place = _gold_value(g, "place")
        hits = [i for i, t in enumerate(texts) if key in t and (not place or facts[i].place == place)]
        if hits:
            used.update(hits)
            pairs.append((g, facts[hits[0]]))
        else:
            missed.append(g)
    fields: dict[str, tuple[int, int]] = {}
    for field in FIELDS:
        judged = [(g, f) for g, f in pairs if field == "place" or field in g]
        right = sum(_norm(_gold_value(g, field)) == _norm(getattr(f, field)) for g, f in judged)
        fields[field] = (right, len(judged))
    return {
        "extracted": len(facts),
        "gold": len(gold),
        "precision": len(used) / len(facts) if facts else 0.0,
        "recall": len(pairs) / len(gold) if gold else 0.0,
        "fields": fields,
        "missed": [g.get("id", g["key"]) for g in missed],
        "unmatched": [f.text for i, f in enumerate(facts) if i not in used],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", default=str(ROOT / "eval" / "facts_gold.jsonl"))
    ap.add_argument("--docs", default=str(ROOT / "data" / "docs"))
    args = ap.parse_args()
    facts: list[Fact] = []
    for path in sorted(Path(args.docs).glob("*.txt")):
        facts.extend(extract_facts(chunk_document(load_document(path))))
    with open(args.gold, encoding="utf-8") as f:
        gold = [json.loads(line) for line in f if line.strip()]
    r = score(facts, gold)
    print(f"extracted {r['extracted']} rows, gold {r['gold']} rows\n")
    print("| metric | value |\n|---|---|")
    print(f"| precision | {r['precision']:.3f} ({round(r['precision'] * r['extracted'])}/{r['extracted']}) |")
    print(f"| recall | {r['recall']:.3f} ({round(r['recall'] * r['gold'])}/{r['gold']}) |")
    for field, (right, n) in r["fields"].items():
        print(f"| {field} accuracy | {right / n if n else 0:.3f} ({right}/{n}) |")
    print(f"\nmissed gold rows: {', '.join(map(str, r['missed'])) or '-'}")
    print(f"extracted rows matching no gold row: {len(r['unmatched'])}")
    for t in r["unmatched"]:
        print(f"  - {t}")


if __name__ == "__main__":
    main()
