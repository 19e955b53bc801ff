"""Checker for eval/qa_regions_dev.jsonl.

usage: python eval/check_dev.py [FILE.jsonl]
Checks: valid JSON, fields, unique ids, kind/level values, doc exists in the corpora and is not in
/work/notes/avoid_docs.txt, gold (8-30 chars, no sentence end inside) is a substring of the doc after
whitespace removal + NFKC, every key has an alternative in the gold's sentence (warning if only
elsewhere in the doc's paragraph, error if not in the doc), unanswerables have empty keys/gold/doc.
Prints counts by kind, level, place and corpus.
"""

import collections
import json
import os
import re
import sys
import unicodedata

CORPUS = "/work/shared/corpus_extra"
AVOID = "/work/notes/avoid_docs.txt"
KINDS = {
    "number",
    "date",
    "penalty",
    "definition",
    "colloquial",
    "procedure",
    "list",
    "fact",
    "who",
    "paraphrase",
    "condition",
    "unanswerable",
}
LEVELS = {"province", "city", "district", "county", "none"}
FIELDS = ["id", "question", "keys", "gold", "place", "doc", "level", "kind"]


def norm(s: str) -> str:
    return unicodedata.normalize("NFKC", re.sub(r"\s+", "", s))


def main(path: str) -> int:
    docs = {}
    for root, _, files in os.walk(CORPUS):
        for f in files:
            if f.endswith(".md") and f != "README.md":
                docs[f] = os.path.join(root, f)
    avoid = {os.path.basename(x.strip()) for x in open(AVOID, encoding="utf-8") if x.strip()}
    errors, warns, ids = [], [], set()
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    cnt = {k: collections.Counter() for k in ("kind", "level", "place", "corpus")}
    for r in rows:
        i = r.get("id")
        for f in FIELDS:
            if f not in r:
                errors.append(f"{i}: missing {f}")
        if i in ids:
            errors.append(f"{i}: duplicate id")
        ids.add(i)
        if r["kind"] not in KINDS:
            errors.append(f"{i}: bad kind {r['kind']}")
        if r["level"] not in LEVELS:
            errors.append(f"{i}: bad level {r['level']}")
        for k in ("kind", "level", "place"):
            cnt[k][str(r[k])] += 1
        if r["kind"] == "unanswerable":
            cnt["corpus"]["unanswerable"] += 1
            if r["keys"] or r["gold"] or r["doc"]:
                errors.append(f"{i}: unanswerable with keys/gold/doc")
            continue
        if r["doc"] not in docs:
            errors.append(f"{i}: doc not found {r['doc']}")
            continue
        if r["doc"] in avoid:
            errors.append(f"{i}: doc is on the avoid list")
        cnt["corpus"][os.path.basename(os.path.dirname(docs[r["doc"]]))] += 1
        raw = open(docs[r["doc"]], encoding="utf-8").read()
        text, gold = norm(raw), norm(r["gold"])
        if not 8 <= len(r["gold"]) <= 30:
            errors.append(f"{i}: gold length {len(r['gold'])}")
        if re.search("[。！？]", gold):
            errors.append(f"{i}: gold spans sentences")
        if gold not in text:
            errors.append(f"{i}: gold not in doc")
            continue
        if not r["keys"]:
            errors.append(f"{i}: answerable with no keys")
        paras = [norm(p) for p in raw.split("\n") if gold in norm(p)]
        para = paras[0] if paras else text
        sents = [s for s in re.split("[。！？]", para) if gold in s] or [para]
        for key in r["keys"]:
            alts = [key] if isinstance(key, str) else key
            alts = [norm(a) for a in alts]
            if any(a in sents[0] for a in alts):
                continue
            if any(a in para for a in alts):
                warns.append(f"{i}: key {key} in paragraph, not in gold's sentence")
            elif any(a in text for a in alts):
                warns.append(f"{i}: key {key} in doc, not in gold's paragraph")
            else:
                errors.append(f"{i}: key {key} not in doc")
    print(f"{len(rows)} questions, {len(errors)} errors, {len(warns)} warnings")
    for e in errors:
        print("ERROR", e)
    for w in warns:
        print("WARN ", w)
    for k, c in cnt.items():
        print(k + ":", dict(c.most_common()))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "eval/qa_regions_dev.jsonl"))
