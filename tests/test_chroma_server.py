"""Server mode against a real `chroma run`: two app processes on one index dir and one server,
a server restart, generation cleanup on the server, and clear errors when the server's
collection is gone or the server is down, also for the app on 127.0.0.1 mid-series of asks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.answer.pipeline import Pipeline
from rag.core.errors import StoreError
from rag.core.settings import Settings
from rag.index.embed import Embedder
from rag.index.generations import Index, chroma_client, close_client, current_generation
from rag.ingest.build import ingest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "data" / "docs"
CHROMA = Path(sys.executable).parent / "chroma"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMA.exists() and not shutil.which("chroma"), reason="the `chroma` CLI is not installed"),
]


class Server:
    """A `chroma run` process on a free local port, persisting to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = path.parent / "chroma-server.log"

    def start(self) -> None:
        exe = str(CHROMA) if CHROMA.exists() else str(shutil.which("chroma"))
        cmd = [exe, "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"chroma run exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        pytest.fail("chroma run did not answer its heartbeat within 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("chroma-server") / "data")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def served(
    server: Server, plans_settings: Settings, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """The two plans indexed in server mode; vectors come from the session index's cache."""
    index = tmp_path_factory.mktemp("served-index")
    shutil.copy(Path(plans_settings.index_dir) / "embcache.sqlite", index / "embcache.sqlite")
    settings = Settings(index_dir=index, chroma_url=server.url)
    docs = served_docs(settings)
    docs.mkdir()
    for f in DOCS.iterdir():
        shutil.copy(f, docs / f.name)
    rep = ingest([docs], settings, embedder)
    assert rep.ok and len(rep.added) == 2
    return settings


def served_docs(settings: Settings) -> Path:
    """The served index's source folder, beside the index."""
    return Path(str(settings.index_dir) + "-docs")


def server_collections(settings: Settings) -> set[str]:
    client = chroma_client(settings, None)
    try:
        return {c if isinstance(c, str) else c.name for c in client.list_collections()}
    finally:
        close_client(client)


def ask_in_subprocess(settings: Settings, question: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["RAG_CHROMA_URL"] = str(settings.chroma_url)
    cmd = [sys.executable, "-m", "rag.cli", "ask", "--json", question, "--index", str(settings.index_dir)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def answer_of(proc: subprocess.Popen[str]) -> dict:  # type: ignore[type-arg]
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out)


JINSHAN = ("金山区的行政复议体制改革要在什么时候完成？", "2022年前")
JINGAN = ("静安区行政复议体制改革什么时候完成", "2022年底前")


def test_generation_collection_is_on_the_server(served: Settings) -> None:
    gen = current_generation(Path(served.index_dir))
    assert gen is not None
    manifest = json.loads((gen / "manifest.json").read_text("utf-8"))
    assert manifest["collection"] == f"zhengce-{gen.name}" and manifest["chroma_url"] == served.chroma_url
    assert not (gen / "chroma").exists()  # vectors live on the server only
    assert manifest["collection"] in server_collections(served)


def test_two_app_processes_share_index_and_server(served: Settings) -> None:
    procs = [ask_in_subprocess(served, q) for q, _ in (JINSHAN, JINGAN)]
    for proc, (_, key) in zip(procs, (JINSHAN, JINGAN), strict=True):
        ans = answer_of(proc)
        assert not ans["abstained"] and key in ans["answer"], ans["answer"]


def test_survives_a_server_restart(served: Settings, server: Server, embedder: Embedder) -> None:
    pipe = Pipeline(served, embedder)
    try:
        assert JINSHAN[1] in pipe.ask(JINSHAN[0]).answer
        server.stop()
        with pytest.raises(StoreError):
            pipe.ask(JINGAN[0])  # down: a StoreError, not a hang or a wrong answer
        with pytest.raises(StoreError, match="cannot open Chroma"):
            Index.open(served, embedder)
        server.start()
        assert JINGAN[1] in pipe.ask(JINGAN[0]).answer  # the same process reconnects
    finally:
        pipe.index.close()
    ans = answer_of(ask_in_subprocess(served, JINSHAN[0]))
    assert JINSHAN[1] in ans["answer"]


def test_reingest_cleans_old_collections_and_repairs_a_lost_one(served: Settings, embedder: Embedder) -> None:
    docs = served_docs(served)
    target = docs / "jinshan_law_based_government_plan_2021-2025.txt"
    names = []
    for year in (2026, 2027):
        with open(target, "a", encoding="utf-8") as f:
            f.write(f"\n附：{year}年底前完成规划实施情况终期评估并向社会公开。\n")
        rep = ingest([docs], served, embedder)
        assert rep.ok and rep.replaced == [target.name]
        names.append(f"zhengce-{rep.generation}")
    on_server = server_collections(served)
    gens = sorted(p.name for p in Path(served.index_dir).glob("gen-*"))
    assert len(gens) == 2 and {f"zhengce-{g}" for g in gens} <= on_server
    assert not {n for n in on_server if n.startswith("zhengce-gen-")} - {f"zhengce-{g}" for g in gens}

    client = chroma_client(served, None)  # someone wipes the current collection
    client.delete_collection(names[-1])
    close_client(client)
    with pytest.raises(StoreError, match="no collection"):
        Index.open(served, embedder)
    rep = ingest([docs], served, embedder)  # nothing changed on disk, but the vectors are gone
    assert rep.ok and rep.unchanged and any("rebuilding" in w for w in rep.warnings)
    pipe = Pipeline(served, embedder)
    try:
        assert "2027年底前" in pipe.ask("金山区什么时候完成规划实施情况终期评估？").answer
    finally:
        pipe.index.close()


def test_server_stopped_during_a_series_of_asks(
    served: Settings, server: Server, embedder: Embedder, tmp_path: Path
) -> None:
    """The app on 127.0.0.1 keeps answering while the Chroma server goes away and comes back:
    503s that say the vector store is unreachable (no 500, no traceback), then answers again,
    without restarting the app."""
    import threading

    import httpx

    sys.path.insert(0, str(ROOT))  # app.py sits beside the installed `rag` package
    from app import build_app, running
    from rag.serve.api import LivePipeline

    settings = served.with_changes(data_dir=tmp_path / "data")
    # Unscoped questions search the whole collection on the server (a district's vectors are cached).
    questions = [JINSHAN[0], "行政复议体制改革什么时候完成？", "如何推进“一网通办”？", "法治政府建设的总体目标是什么？"]
    seen: list[tuple[int, str]] = []
    stop = threading.Event()
    with running(build_app(settings, LivePipeline(settings, embedder))) as url:

        def asker() -> None:
            with httpx.Client(base_url=url, timeout=60) as c:
                k = 0
                while not stop.is_set():
                    r = c.post("/api/ask", json={"question": questions[k % len(questions)]})
                    seen.append((r.status_code, r.text))
                    k += 1

        def wait_for(predicate: Any, what: str) -> None:
            deadline = time.monotonic() + 120
            while not predicate():
                assert time.monotonic() < deadline, f"{what}: {seen[-3:]}"
                time.sleep(0.1)

        thread = threading.Thread(target=asker, daemon=True)
        thread.start()
        try:
            wait_for(lambda: sum(s == 200 for s, _ in seen) >= 3, "answers before the stop")
            server.stop()
            n = len(seen)
            wait_for(lambda: sum(s != 200 for s, _ in seen[n:]) >= 4, "refusals while down")
            with httpx.Client(base_url=url, timeout=60) as c:
                chat = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "行政复议"}]})
                streamed = c.post(
                    "/v1/chat/completions",
                    json={"stream": True, "messages": [{"role": "user", "content": "法治政府建设的总体目标"}]},
                )
            server.start()
            n = len(seen)
            wait_for(lambda: sum(s == 200 for s, _ in seen[n:]) >= 4, "answers after the restart")
        finally:
            stop.set()
            thread.join(120)
            if server.proc is None:
                server.start()
    assert {s for s, _ in seen} <= {200, 503}, {s for s, _ in seen}
    down = [json.loads(t)["detail"] for s, t in seen if s == 503]
    assert down and all("向量库" in d and "vector store is unreachable" in d for d in down), down[:2]
    assert not any("Traceback" in t or "Internal Server Error" in t for _, t in seen)
    for r in (chat, streamed):
        assert r.status_code == 503, r.text
        err = r.json()["error"]
        assert err["type"] == "server_error" and "vector store is unreachable" in err["message"]
    assert seen[-1][0] == 200 and json.loads(seen[-1][1])["retrieved"]
