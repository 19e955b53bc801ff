"""`make soak`: N minutes (default 20) of mixed traffic against the real app (`python app.py`) on
127.0.0.1 over a copy of the bundled plans' index, with the process watched from outside.

Traffic, all at once with short pauses: questions on /api/ask, streaming chats on
/v1/chat/completions, 👍/👎 on /api/feedback; in the middle an admin upload (/api/admin/documents),
then a delete of that document, then a re-index, each a new index generation swapped in while
the questions go on. Every `interval` seconds the app's RSS (/proc/<pid>/status), open file
descriptors (/proc/<pid>/fd), threads and Chroma handles (descriptors open on a generation's
chroma.sqlite3, and how many generations they span) are sampled.

The table goes to bench/results.md as its own section with --write: RSS drift after warm-up
(goal: within 10 %), descriptors and Chroma handles at warm-up and at the end (goal: no growth),
and failed requests, in total and during the swaps (goal: none).

    .venv/bin/python bench/soak.py [--minutes 20] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import HOST, RESULTS, build_index, questions, start_server, write_section

SECTION = "## Soak (`make soak`)"
PASSWORD = "soak-admin-pass"
UPLOAD_NAME = "soak_fengxian_plan.txt"
WARM_NAME = "soak_warmup_notice.txt"  # uploaded and deleted inside the warm-up
WARM_TEXT = "奉贤区政务服务预约办理通知\n\n一、办理方式\n申请人可通过“一网通办”平台预约，工作日9时至17时办理。\n"
UPLOAD_TEXT = (
    "奉贤区公共数据开放工作方案\n\n一、总体要求\n（一）工作目标\n"
    "到2025年底，全区公共数据开放接口不少于200个，数据开放满意度达到90%以上。\n\n"
    "二、主要任务\n（一）完善开放目录\n1. 编制开放清单。2024年6月底前完成全区公共数据开放清单编制，并按季度更新。\n"
    "（二）强化安全保障\n2. 落实分级分类。建立数据分级分类制度，2024年底前覆盖全部区级部门。\n"
)


@dataclass
class Sample:
    t: float
    rss_mb: float
    fds: int
    threads: int
    chroma_fds: int
    generations: int
    requests: int
    failed: int


@dataclass
class Tally:
    sent: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[float, str, str]] = field(default_factory=list)  # (time, kind, what)

    def ok(self, kind: str) -> None:
        self.sent[kind] = self.sent.get(kind, 0) + 1

    def fail(self, kind: str, what: str) -> None:
        self.sent[kind] = self.sent.get(kind, 0) + 1
        self.failed.append((time.monotonic(), kind, what))

    @property
    def total(self) -> int:
        return sum(self.sent.values())


def sample(pid: int, t: float, tally: Tally) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kb = int(fields["VmRSS"].split()[0])
    threads = int(fields["Threads"].strip())
    fd_dir = Path(f"/proc/{pid}/fd")
    targets = []
    for fd in os.listdir(fd_dir):
        try:
            targets.append(os.readlink(fd_dir / fd))
        except OSError:  # closed while listing
            pass
    chroma = [p for p in targets if p.endswith("chroma.sqlite3")]
    gens = {part for p in chroma for part in Path(p).parts if part.startswith("gen-")}
    return Sample(t, rss_kb / 1024, len(targets), threads, len(chroma), len(gens), tally.total, len(tally.failed))


async def asker(c: httpx.AsyncClient, qs: list[str], tally: Tally, stop: float, answers: list[dict[str, Any]]) -> None:
    rnd = random.Random(id(asker) ^ len(answers))
    while time.monotonic() < stop:
        q = rnd.choice(qs)
        try:
            r = await c.post("/api/ask", json={"question": q})
            if r.status_code == 200:
                tally.ok("ask")
                if len(answers) < 50:
                    answers.append(r.json())
            else:
                tally.fail("ask", f"{r.status_code} {r.text[:120]}")
        except httpx.HTTPError as e:
            tally.fail("ask", f"transport {type(e).__name__}")
        await asyncio.sleep(rnd.uniform(0.05, 0.3))


async def streamer(c: httpx.AsyncClient, qs: list[str], tally: Tally, stop: float) -> None:
    rnd = random.Random(7)
    while time.monotonic() < stop:
        body = {
            "model": "zhengce-extractive",
            "stream": True,
            "messages": [{"role": "user", "content": rnd.choice(qs)}],
        }
        try:
            async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                lines = [line async for line in r.aiter_lines()]
            if r.status_code == 200 and "data: [DONE]" in lines and not any('"error"' in ln for ln in lines):
                tally.ok("stream")
            else:
                tally.fail("stream", f"{r.status_code} {' '.join(lines)[:120]}")
        except httpx.HTTPError as e:
            tally.fail("stream", f"transport {type(e).__name__}")
        await asyncio.sleep(rnd.uniform(0.2, 0.6))


async def rater(c: httpx.AsyncClient, tally: Tally, stop: float, answers: list[dict[str, Any]]) -> None:
    rnd = random.Random(11)
    while time.monotonic() < stop:
        await asyncio.sleep(rnd.uniform(1.0, 3.0))
        if not answers:
            continue
        body = {"rating": rnd.choice(["up", "down"]), "comment": "soak", "answer": rnd.choice(answers)}
        try:
            r = await c.post("/api/feedback", json=body)
            if r.status_code == 200:
                tally.ok("feedback")
            else:
                tally.fail("feedback", f"{r.status_code} {r.text[:120]}")
        except httpx.HTTPError as e:
            tally.fail("feedback", f"transport {type(e).__name__}")


async def admin_job(
    c: httpx.AsyncClient, kind: str, tally: Tally, name: str = UPLOAD_NAME, text: str = UPLOAD_TEXT
) -> tuple[float, float, str]:
    """Run one admin job to its end; (start, end, outcome)."""
    h = {"x-admin-password": PASSWORD}
    t0 = time.monotonic()
    if kind == "upload":
        r = await c.post("/api/admin/documents", headers=h, files=[("files", (name, text.encode("utf-8")))])
    elif kind == "delete":
        docs = (await c.get("/api/documents")).json()["documents"]
        doc = next(d for d in docs if d["source"] == name)
        r = await c.delete(f"/api/admin/documents/{doc['doc_id']}", headers=h)
    else:
        r = await c.post("/api/admin/reindex", headers=h)
    if r.status_code != 200:
        tally.fail("admin", f"{kind}: {r.status_code} {r.text[:120]}")
        return t0, time.monotonic(), f"failed ({r.status_code})"
    job = r.json()["job"]
    while job["state"] in ("queued", "running"):
        await asyncio.sleep(0.5)
        job = (await c.get(f"/api/admin/jobs/{job['id']}", headers=h)).json()["job"]
    if job["state"] == "done":
        tally.ok("admin")
    else:
        tally.fail("admin", f"{kind}: {job['message']}")
    return t0, time.monotonic(), f"{job['state']}: {job['message'][:80]}"


async def soak(url: str, pid: int, seconds: float, interval: float, tally: Tally) -> dict[str, Any]:
    qs = questions()
    answers: list[dict[str, Any]] = []
    samples: list[Sample] = []
    swaps: list[tuple[str, float, float, str]] = []
    t_start = time.monotonic()
    stop = t_start + seconds
    # Idle connections are dropped after 2 s, before uvicorn's 5 s keep-alive timeout closes them
    # from its side: otherwise a request sent on a connection the server is just closing fails
    # with a transport error that says nothing about the app.
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:

        async def sampler() -> None:
            while time.monotonic() < stop:
                samples.append(sample(pid, time.monotonic() - t_start, tally))
                await asyncio.sleep(min(interval, max(0.0, stop - time.monotonic())))
            samples.append(sample(pid, time.monotonic() - t_start, tally))

        async def swapper() -> None:
            # Inside the warm-up, one upload and its delete: every path (the passage embedder's first
            # batch allocates ~33 MB once, measured) has run before the warm-up sample.
            for kind in ("upload", "delete"):
                a, b, outcome = await admin_job(c, kind, tally, WARM_NAME, WARM_TEXT)
                swaps.append((f"warm-up {kind}", a - t_start, b - t_start, outcome))
            for kind, at in (("upload", 0.40), ("delete", 0.55), ("reindex", 0.70)):
                await asyncio.sleep(max(0.0, t_start + at * seconds - time.monotonic()))
                a, b, outcome = await admin_job(c, kind, tally)
                swaps.append((kind, a - t_start, b - t_start, outcome))

        await asyncio.gather(
            sampler(),
            swapper(),
            *(asker(c, qs, tally, stop, answers) for _ in range(4)),
            *(streamer(c, qs, tally, stop) for _ in range(2)),
            rater(c, tally, stop, answers),
        )
    return {"samples": samples, "swaps": swaps, "t_start": t_start}


def report(minutes: float, res: dict[str, Any], tally: Tally, warm_s: float) -> str:
    samples: list[Sample] = res["samples"]
    swaps = res["swaps"]
    t_start = res["t_start"]
    warm = next((s for s in samples if s.t >= warm_s), samples[0])
    after = [s for s in samples if s.t >= warm.t]
    last = samples[-1]
    peak = max(s.rss_mb for s in after)
    drift = (peak - warm.rss_mb) / warm.rss_mb * 100
    end_drift = (last.rss_mb - warm.rss_mb) / warm.rss_mb * 100
    windows = [(a, b + 5.0) for _, a, b, _ in swaps]  # a swap, and 5 s after it
    during = [f for f in tally.failed if any(a <= f[0] - t_start <= b for a, b in windows)]
    rows = "\n".join(
        f"| {s.t:.0f} | {s.rss_mb:.0f} | {s.fds} | {s.chroma_fds} | {s.generations} | {s.threads} | {s.requests} | {s.failed} |"
        for s in samples
    )
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(tally.sent.items()))
    swap_rows = "\n".join(f"| {k} | {a:.0f} | {b:.0f} | {o} |" for k, a, b, o in swaps)
    fails = "\n".join(f"- {f[0] - t_start:.0f} s {f[1]}: {f[2]}" for f in tally.failed[:10])
    summary = [
        ("duration", f"{minutes:g} min; warm-up {warm.t:.0f} s"),
        ("requests", f"{tally.total} ({kinds})"),
        ("failed requests", f"{len(tally.failed)}, of which during a swap (±5 s): {len(during)}"),
        (
            "RSS MB at warm-up → peak → end",
            f"{warm.rss_mb:.0f} → {peak:.0f} → {last.rss_mb:.0f} (peak {drift:+.1f} %, end {end_drift:+.1f} %)",
        ),
        ("open fds at warm-up → end (max)", f"{warm.fds} → {last.fds} ({max(s.fds for s in after)})"),
        (
            "Chroma handles (generations) at warm-up → end (max)",
            f"{warm.chroma_fds} ({warm.generations}) → {last.chroma_fds} ({last.generations}) "
            f"({max(s.chroma_fds for s in after)} ({max(s.generations for s in after)}))",
        ),
        ("threads at warm-up → end", f"{warm.threads} → {last.threads}"),
    ]
    out = [
        "| metric | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in summary),
        "",
        "| swap | start s | end s | outcome |",
        "|---|---|---|---|",
        swap_rows,
        "",
        "| t s | RSS MB | fds | Chroma fds | generations open | threads | requests | failed |",
        "|---|---|---|---|---|---|---|---|",
        rows,
    ]
    if fails:
        out += ["", "First failures:", fails]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--interval", type=float, default=0, help="seconds between samples (default: 1/20 of the run)")
    ap.add_argument("--index", default=str(Path(tempfile.gettempdir()) / "zhengce-load-index"))
    ap.add_argument("--write", action="store_true", help="put the table into bench/results.md")
    args = ap.parse_args()
    if not 0 < args.minutes <= 120:
        raise SystemExit("--minutes must be in (0, 120]")
    seconds = args.minutes * 60
    interval = args.interval or max(5.0, seconds / 20)
    base = Path(args.index)
    build_index(base)
    work = Path(tempfile.mkdtemp(prefix="zhengce-soak-"))
    index = work / "index"
    shutil.copytree(base, index, symlinks=True)  # uploads, deletes and re-index change this copy only
    docs = work / "data" / "docs"
    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "docs", docs)  # what re-index reads
    env = {"RAG_ADMIN_PASSWORD": PASSWORD, "GRADIO_TEMP_DIR": str(work / "gradio")}
    proc, url = start_server(index, work / "data", env)
    tally = Tally()
    try:
        res = asyncio.run(soak(url, proc.pid, seconds, interval, tally))
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(work, ignore_errors=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    warm_s = min(60.0, 0.2 * seconds)
    text = (
        f"{SECTION}\n\n`bench/soak.py --minutes {args.minutes:g}` {stamp}: the app (`python app.py`, default settings) on "
        f"{HOST} over a copy of the two bundled plans' index; 4 askers on /api/ask and 2 streaming chats on "
        "/v1/chat/completions (each with 0.05–0.6 s pauses), 👍/👎 every 1–3 s, an upload and a delete of a small "
        "notice inside the warm-up (so every path has run once), and at 40 / 55 / 70 % of the run "
        "an admin upload, a delete of it and a re-index. "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other work), Python "
        f"{platform.python_version()}; the traffic runs on the same cores.\n\n"
        + report(args.minutes, res, tally, warm_s)
        + "\n"
    )
    print(text)
    if args.write:
        write_section(text, SECTION)
        print(f"→ {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
