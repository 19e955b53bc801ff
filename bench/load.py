"""`make load`: N concurrent clients × M questions on /api/ask, then S concurrent streaming chats on
/v1/chat/completions, against the real app (`python app.py`) started on 127.0.0.1 over the bundled
plans. Loopback only, bounded in count and in time. Prints a table (errors, p50/p95/p99,
throughput, fairness) and, with --write, puts it into bench/results.md as its own section.

Fairness: for each request, the number of requests sent after it that were answered before it;
the table gives the largest such count (a FIFO server keeps it near the number of workers).

    .venv/bin/python bench/load.py [--clients 50] [--questions 20] [--streams 20] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.md"
HOST = "127.0.0.1"  # loopback only, by design
MAX_REQUESTS = 5000
SECTION = "## Load (`make load`)"


@dataclass
class Shot:
    sent: float
    done: float
    status: int  # 0: transport error
    first: float | None = None  # streaming: time of the first content delta

    @property
    def seconds(self) -> float:
        return self.done - self.sent


def questions() -> list[str]:
    rows = [json.loads(line) for line in (ROOT / "eval" / "qa.jsonl").read_text("utf-8").splitlines() if line.strip()]
    return [r["question"] for r in rows]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def build_index(index: Path) -> None:
    if (index / "current").exists():
        return
    cmd = [sys.executable, "-m", "rag.cli", "ingest", str(ROOT / "data" / "docs"), "--index", str(index)]
    subprocess.run(cmd, cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def start_server(
    index: Path, data: Path, env_extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RAG_INDEX_DIR": str(index),
        "RAG_DATA_DIR": str(data),
        "RAG_HOST": HOST,
        "RAG_PORT": str(port),
        **(env_extra or {}),
    }
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with status {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("the app did not start within 180 s")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def overtaken(shots: list[Shot]) -> list[int]:
    """For each request: how many requests sent later were answered before it."""
    by_sent = sorted(shots, key=lambda s: s.sent)
    out = []
    dones_after: list[float] = []  # completion times of later-sent requests, sorted (built backwards)
    for s in reversed(by_sent):
        out.append(bisect.bisect_left(dones_after, s.done))
        bisect.insort(dones_after, s.done)
    return out


async def ask_load(url: str, clients: int, per_client: int, qs: list[str], budget_s: float) -> tuple[list[Shot], float]:
    shots: list[Shot] = []
    limits = httpx.Limits(max_connections=clients + 5, max_keepalive_connections=clients + 5)
    deadline = time.perf_counter() + budget_s
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:

        async def client(k: int) -> None:
            for j in range(per_client):
                if time.perf_counter() > deadline:
                    return
                q = qs[(k * per_client + j) % len(qs)]
                t0 = time.perf_counter()
                try:
                    r = await c.post("/api/ask", json={"question": q})
                    status = r.status_code
                except httpx.HTTPError:
                    status = 0
                shots.append(Shot(t0, time.perf_counter(), status))

        t0 = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        return shots, time.perf_counter() - t0


async def stream_load(url: str, streams: int, qs: list[str]) -> tuple[list[Shot], float]:
    shots: list[Shot] = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as c:

        async def chat(k: int) -> None:
            body = {"model": "zhengce-extractive", "stream": True, "messages": [{"role": "user", "content": qs[k]}]}
            t0 = time.perf_counter()
            first = None
            status = 0
            try:
                async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                    status = r.status_code
                    done = False
                    async for line in r.aiter_lines():
                        if line.startswith("data: ") and '"content"' in line and first is None:
                            first = time.perf_counter()
                        if line == "data: [DONE]":
                            done = True
                    if not done:
                        status = 0
            except httpx.HTTPError:
                status = 0
            shots.append(Shot(t0, time.perf_counter(), status, first))

        t0 = time.perf_counter()
        await asyncio.gather(*(chat(k) for k in range(streams)))
        return shots, time.perf_counter() - t0


def table(clients: int, per: int, asks: list[Shot], ask_s: float, streams: list[Shot], stream_s: float) -> str:
    ok = [s for s in asks if s.status == 200]
    lat = [s.seconds for s in ok]
    over = overtaken(ok)
    errors = len(asks) - len(ok)
    codes = sorted({s.status for s in asks if s.status != 200})
    sok = [s for s in streams if s.status == 200]
    ttfb = [s.first - s.sent for s in sok if s.first is not None]
    rows = [
        ("requests", f"{len(asks)} ({clients} clients × {per})"),
        ("errors", f"{errors}" + (f" (status {', '.join(map(str, codes))})" if codes else "")),
        ("p50 / p95 / p99 s", f"{pct(lat, 50):.3f} / {pct(lat, 95):.3f} / {pct(lat, 99):.3f}"),
        ("max s", f"{max(lat, default=float('nan')):.3f}"),
        ("throughput req/s", f"{len(ok) / ask_s:.1f}"),
        (
            "fairness: max later requests answered first",
            f"{max(over, default=0)} (p99 {pct([float(x) for x in over], 99):.0f})",
        ),
        ("streams", f"{len(streams)} concurrent, {len(streams) - len(sok)} errors"),
        ("stream first delta p50 / p95 s", f"{pct(ttfb, 50):.3f} / {pct(ttfb, 95):.3f}"),
        (
            "stream complete p50 / p95 s",
            f"{pct([s.seconds for s in sok], 50):.3f} / {pct([s.seconds for s in sok], 95):.3f}",
        ),
        ("streams wall s", f"{stream_s:.2f}"),
    ]
    return "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def write_section(text: str, section: str = SECTION) -> None:
    """Replace (or append) a script's section of bench/results.md, leaving the others alone."""
    old = RESULTS.read_text("utf-8") if RESULTS.is_file() else "# Benchmarks\n"
    pattern = re.compile(re.escape(section) + r".*?(?=^## |\Z)", re.S | re.M)
    block = text.rstrip() + "\n\n"
    new = pattern.sub(lambda _m: block, old) if pattern.search(old) else old.rstrip() + "\n\n" + block
    RESULTS.write_text(new, "utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--questions", type=int, default=20, help="questions per client, asked without pause")
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--index", default=str(Path(tempfile.gettempdir()) / "zhengce-load-index"))
    ap.add_argument("--budget-s", type=float, default=300, help="stop sending after this many seconds")
    ap.add_argument("--write", action="store_true", help="put the table into bench/results.md")
    args = ap.parse_args()
    if args.clients * args.questions > MAX_REQUESTS:
        raise SystemExit(f"at most {MAX_REQUESTS} requests")
    index = Path(args.index)
    build_index(index)
    proc, url = start_server(index, Path(tempfile.mkdtemp(prefix="zhengce-load-data-")))
    try:
        qs = questions()
        asyncio.run(ask_load(url, 4, 5, qs, 60))  # warm-up: first-use loading, caches
        asks, ask_s = asyncio.run(ask_load(url, args.clients, args.questions, qs, args.budget_s))
        streams, stream_s = asyncio.run(stream_load(url, args.streams, qs))
    finally:
        proc.terminate()
        proc.wait(20)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = table(args.clients, args.questions, asks, ask_s, streams, stream_s)
    text = (
        f"{SECTION}\n\n`bench/load.py` {stamp}: the app (`python app.py`, default settings: 2 answer slots, a line of 64) on "
        f"127.0.0.1 over the two bundled plans, {args.clients} asyncio clients asking `eval/qa.jsonl` questions on "
        f"/api/ask without pause, then {args.streams} concurrent streaming chats on /v1/chat/completions. "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other work), Python {platform.python_version()}; "
        "the load generator runs on the same cores.\n\n" + body + "\n"
    )
    print(text)
    if args.write:
        write_section(text)
        print(f"→ {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
