"""The Gradio chat waits in the same admission line as /api/ask (rag.serve.admission): from its
worker thread it is served in arrival order among the API's requests, and refused with the same
bilingual message when the line is full. Real pipeline, real anyio worker threads."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # app.py sits beside the installed `rag` package
from app import make_ask
from rag.answer.pipeline import Pipeline
from rag.serve.admission import Admission, OverloadedError

JINSHAN = "金山区如何推进“一网通办”？"


def _last_bubble(outputs: list[tuple[Any, ...]]) -> str:
    chat = outputs[-1][0]
    return str(chat[-1]["content"])


def test_thread_waiters_keep_their_place_in_the_fifo_line() -> None:
    admission = Admission(slots=1, max_waiting=5)
    order: list[str] = []

    def in_thread() -> None:
        with admission.blocking_slot():
            order.append("thread")

    async def in_loop() -> None:
        async with admission.slot():
            order.append("async")

    async def main() -> None:
        async with admission.slot():  # the only slot is busy
            thread = asyncio.ensure_future(anyio.to_thread.run_sync(in_thread))
            while admission.waiting < 1:
                await asyncio.sleep(0.01)
            later = asyncio.ensure_future(in_loop())  # arrives after the thread
            while admission.waiting < 2:
                await asyncio.sleep(0.01)
        await asyncio.gather(thread, later)

    asyncio.run(main())
    assert order == ["thread", "async"]
    assert admission.active == 0 and admission.waiting == 0 and admission.admitted == 3


def test_full_line_refuses_a_thread_like_a_request() -> None:
    admission = Admission(slots=1, max_waiting=0)

    def in_thread() -> None:
        with admission.blocking_slot():
            pass

    async def main() -> None:
        async with admission.slot():
            with pytest.raises(OverloadedError):
                await anyio.to_thread.run_sync(in_thread)
        await anyio.to_thread.run_sync(in_thread)  # free again

    asyncio.run(main())
    assert admission.refused == 1 and admission.active == 0


def test_gradio_chat_goes_through_the_api_line(pipeline: Pipeline) -> None:
    admission = Admission(slots=1, max_waiting=0)
    ask = make_ask(lambda: pipeline, admission)

    async def main() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        async with admission.slot():  # /api/ask holds the only slot and nobody may wait
            refused = await anyio.to_thread.run_sync(lambda: list(ask(JINSHAN, "全部", [])))
        answered = await anyio.to_thread.run_sync(lambda: list(ask(JINSHAN, "全部", [])))
        return refused, answered

    refused, answered = asyncio.run(main())
    bubble = _last_bubble(refused)
    assert 'class="zc-error"' in bubble and "当前提问人数过多" in bubble and "too many questions" in bubble
    assert "zc-cite" in _last_bubble(answered) and "一网通办" in _last_bubble(answered)
    assert admission.admitted == 2 and admission.refused == 1 and admission.active == 0
