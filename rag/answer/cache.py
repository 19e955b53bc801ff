"""Answers already given, per index generation.

A help desk hears the same questions over and over, and the extractive answer is a pure function
of the question, the district asked for and the generation it reads. One cache lives with one
loaded generation, so a reload starts an empty one and no answer outlives the text it quotes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from rag.core.types import Answer

Key = tuple[str, str | None]


class AnswerCache:
    """A bounded LRU of extractive answers; `size` 0 disables it. Thread-safe.

    Two threads asking the same new question may both compute it: the answer is the same, and
    holding a lock across a whole answer would serialise every question."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._d: OrderedDict[Key, Answer] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._d)

    def get_or_compute(self, key: Key, compute: Callable[[], Answer]) -> Answer:
        if self._size <= 0:
            return compute()
        with self._lock:
            hit = self._d.get(key)
            if hit is not None:
                self._d.move_to_end(key)
                self.hits += 1
        if hit is not None:
            # The text and citations are those computed; timings say this request's cost was a lookup.
            return replace(
                hit, timings_ms={"retrieve": 0.0, "answer": 0.0, "total": 0.0}, extra={**hit.extra, "cached": True}
            )
        answer = compute()
        with self._lock:
            self.misses += 1
            self._d[key] = answer
            self._d.move_to_end(key)
            while len(self._d) > self._size:
                self._d.popitem(last=False)
        return answer
