"""👍 / 👎 feedback on answers, kept in SQLite and exportable as eval-set lines.

Rated answers are the cheapest source of new evaluation questions: a 👍 on an answer gives a
question with a known-good supporting quote (`gold`), a 👍 on a refusal gives an `unanswerable`
question, and a 👎 gives a question a person should review and label.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.core.errors import InputError

MAX_COMMENT_CHARS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL,
    rewritten_question TEXT,
    district TEXT,
    answer TEXT NOT NULL,
    abstained INTEGER NOT NULL DEFAULT 0,
    citations TEXT NOT NULL DEFAULT '[]'
)
"""


def normalise_rating(rating: str | bool) -> str:
    """'up' / 'down' from a bool (Gradio's like event), 'up'/'down', 'good'/'bad' or 👍/👎."""
    if isinstance(rating, bool):
        return "up" if rating else "down"
    r = str(rating).strip().lower()
    if r in ("up", "good", "like", "👍", "+1", "1", "true"):
        return "up"
    if r in ("down", "bad", "dislike", "👎", "-1", "0", "false"):
        return "down"
    raise InputError(f"评价只能是 up 或 down (rating must be 'up' or 'down', got {rating!r})")


class FeedbackStore:
    """One SQLite file; a connection per call so any thread (Gradio, FastAPI) can use it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # SQLite serialises writers anyway; this avoids 'database is locked'
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def add(
        self,
        question: str,
        answer: str,
        citations: Sequence[dict[str, Any]],
        rating: str | bool,
        comment: str = "",
        *,
        abstained: bool = False,
        district: str | None = None,
        rewritten_question: str | None = None,
    ) -> int:
        """Store one rating and return its id. `citations` are `answer_dict()["citations"]`."""
        row = (
            datetime.now(UTC).isoformat(timespec="seconds"),
            normalise_rating(rating),
            (comment or "").strip()[:MAX_COMMENT_CHARS],
            question,
            rewritten_question if rewritten_question and rewritten_question != question else None,
            district,
            answer,
            int(bool(abstained)),
            json.dumps(list(citations), ensure_ascii=False),
        )
        with self._lock, self._connect() as db:
            cur = db.execute(
                "INSERT INTO feedback (created_at, rating, comment, question, rewritten_question, district, answer,"
                " abstained, citations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return int(cur.lastrowid or 0)

    def set_comment(self, feedback_id: int, comment: str) -> bool:
        """Attach or replace the comment of an earlier rating; False if there is no such id."""
        with self._lock, self._connect() as db:
            cur = db.execute(
                "UPDATE feedback SET comment = ? WHERE id = ?",
                ((comment or "").strip()[:MAX_COMMENT_CHARS], feedback_id),
            )
            return cur.rowcount > 0

    def all(self) -> list[dict[str, Any]]:
        """Every rating, oldest first, with `citations` decoded and `abstained` as a bool."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM feedback ORDER BY id").fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["citations"] = json.loads(d["citations"])
            d["abstained"] = bool(d["abstained"])
            out.append(d)
        return out

    def export_jsonl(self, out_path: Path, rating: str | None = None) -> int:
        """Write eval-set lines (the `rag eval` format) to out_path; return how many.

        kind: "unanswerable" for a 👍 refusal, "feedback" for a 👍 answer (gold = its first cited
        quote), "review" for a 👎 (a person should fill in keys/gold before using it).
        """
        wanted = normalise_rating(rating) if rating is not None else None
        rows = [r for r in self.all() if wanted is None or r["rating"] == wanted]
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with open(out_path, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(eval_line(r), ensure_ascii=False) + "\n")
        return len(rows)


def eval_line(r: dict[str, Any]) -> dict[str, Any]:
    """One stored rating as an eval-set row."""
    good = r["rating"] == "up"
    quotes = [c.get("quote", "") for c in r["citations"] if c.get("quote")]
    if not good:
        kind = "review"
    elif r["abstained"]:
        kind = "unanswerable"
    else:
        kind = "feedback"
    return {
        "id": f"fb-{r['id']:05d}",
        # The standalone form: eval asks single questions, without the conversation.
        "question": r["rewritten_question"] or r["question"],
        "asked": r["question"],
        "answer": r["answer"],
        "rating": r["rating"],
        "comment": r["comment"],
        "keys": [],
        "gold": quotes[0] if good and not r["abstained"] and quotes else "",
        "district": r["district"],
        "kind": kind,
        "sources": sorted({c.get("source", "") for c in r["citations"] if c.get("source")}),
        "created_at": r["created_at"],
    }
