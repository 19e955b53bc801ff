"""The admission queue in front of the question pipeline: a few worker slots, a bounded FIFO line.

Answering is CPU-bound, so running 40 questions at once (FastAPI's threadpool) only makes them
share the cores and the GIL: every one finishes late, in no particular order. Here a small
number of slots run at once and the rest wait in arrival order; when the line is full the
request is refused at once with 429 and a Retry-After estimate instead of waiting unboundedly.

All methods run on the event loop (the endpoints are async and hand the work to the threadpool
once admitted), so the line needs no lock and its order is the order requests were read. Code
in a worker thread of that loop (Gradio's chat handler) takes its place in the same line through
`blocking_slot()`, which runs the same steps on the loop via anyio.from_thread.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from anyio import from_thread


class OverloadedError(Exception):
    """The line is full; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int, waiting: int) -> None:
        super().__init__(
            f"当前提问人数过多，请 {retry_after} 秒后再试 (too many questions in line ({waiting}); retry in {retry_after} s)"
        )
        self.retry_after = retry_after


class Admission:
    """`async with admission.slot():` waits its turn (FIFO) for one of `slots` workers."""

    def __init__(self, slots: int = 2, max_waiting: int = 64) -> None:
        self.slots = max(1, slots)
        self.max_waiting = max(0, max_waiting)
        self._active = 0
        self._line: deque[asyncio.Future[None]] = deque()
        self._service_s = 0.1  # moving average of the time a slot is held, for Retry-After
        self.admitted = 0
        self.refused = 0

    @property
    def waiting(self) -> int:
        return len(self._line)

    @property
    def active(self) -> int:
        return self._active

    def retry_after(self) -> int:
        return max(1, math.ceil((len(self._line) + self._active) * self._service_s / self.slots))

    async def _acquire(self) -> None:
        if self._active < self.slots and not self._line:
            self._active += 1
            return
        if len(self._line) >= self.max_waiting:
            self.refused += 1
            raise OverloadedError(self.retry_after(), len(self._line))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._line.append(fut)
        try:
            await fut  # a releasing worker hands its slot straight to the head of the line
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()  # handed a slot just as the client went away: pass it on
            else:
                self._line.remove(fut)
            raise

    def _release(self) -> None:
        while self._line:
            fut = self._line.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self._active -= 1

    def _done(self, t0: float) -> None:
        self._service_s = 0.9 * self._service_s + 0.1 * (time.monotonic() - t0)
        self._release()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._acquire()
        self.admitted += 1
        t0 = time.monotonic()
        try:
            yield
        finally:
            self._done(t0)

    @contextmanager
    def blocking_slot(self) -> Iterator[None]:
        """`slot()` for code running in one of the event loop's anyio worker threads (Gradio's sync
        handlers, FastAPI's `def` endpoints): waits in the same FIFO line, raises OverloadedError
        the same way. Hold it across no `yield` of a generator: it must be released from such a thread."""
        from_thread.run(self._acquire)
        self.admitted += 1
        t0 = time.monotonic()
        try:
            yield
        finally:
            from_thread.run_sync(self._done, t0)
