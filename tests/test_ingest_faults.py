"""Ingest under faults, on real parts: a second ingest says whom it waits for (or fails at once
with --no-wait), abandoned half-built generations are removed, a kill -9 during the BM25 write
or the `current` swap and a full disk all leave the previous index usable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_ingest import DOC_A, DOC_B, QUESTION_A, MemoEmbedder, answers, half_built

from rag.cli import EXIT_BUSY
from rag.core.errors import StoreError
from rag.core.settings import Settings
from rag.index.embed import Embedder
from rag.index.generations import current_generation
from rag.ingest.build import index_lock, ingest, remove_abandoned_builds

ROOT = Path(__file__).resolve().parents[1]


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


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag.cli", *args]


def test_second_ingest_says_whom_it_waits_for_and_no_wait_fails_at_once(docs: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    with index_lock(index):  # this process plays the running ingest
        info = json.loads((index / ".lock.info").read_text("utf-8"))
        assert info["pid"] == os.getpid() and info["started"]
        t0 = time.monotonic()
        r = subprocess.run(
            _cli("ingest", str(docs), "--index", str(index), "--no-wait"),
            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == EXIT_BUSY, r.stderr
        assert f"pid {os.getpid()}" in r.stderr and "another ingest" in r.stderr and "另一个导入" in r.stderr
        assert time.monotonic() - t0 < 60 and not list(index.glob("gen-*"))
        waiting = subprocess.Popen(
            _cli("ingest", str(docs), "--index", str(index)),
            cwd=ROOT, env=_env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert waiting.stderr is not None
        line = waiting.stderr.readline()  # the first thing it says
        assert "waiting for another ingest" in line and f"pid {os.getpid()}" in line, line
        assert waiting.poll() is None
    assert waiting.wait(120) == 0  # it goes on once the lock is free
    assert current_generation(index) is not None and not (index / ".lock.info").exists()


def _fake_half_built(settings: Settings) -> Path:
    g = Path(settings.index_dir) / "gen-20000101T000000000000"
    (g / "chroma").mkdir(parents=True)
    (g / "chunks.jsonl").write_text("{}\n", "utf-8")
    return g


def test_every_ingest_removes_abandoned_builds(docs: Path, tmp_path: Path, emb: MemoEmbedder) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    ingest([docs], settings, emb)
    g = _fake_half_built(settings)
    rep = ingest([docs], settings, emb)  # nothing changed: still cleans up
    assert rep.ok and rep.unchanged and not g.exists()


def test_app_start_removes_abandoned_builds_unless_an_ingest_is_live(
    docs: Path, tmp_path: Path, emb: MemoEmbedder
) -> None:
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    ingest([docs], settings, emb)
    g = _fake_half_built(settings)
    with index_lock(Path(settings.index_dir)):  # a live ingest is building it
        assert remove_abandoned_builds(settings) == [] and g.exists()
    sys.path.insert(0, str(ROOT))
    from app import build_app

    build_app(settings)
    assert not g.exists() and current_generation(Path(settings.index_dir)) is not None


KILL_AT = r"""
import os, signal, sys
from pathlib import Path
import rag.index.bm25 as bm25
point = sys.argv[1]
if point == "bm25":
    def save(self, path):
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "params.index.json").write_text('{"k1": 1.')  # torn mid-write
        os.kill(os.getpid(), signal.SIGKILL)
    bm25.BM25Store.save = save
elif point == "swap":
    real_replace = os.replace
    def replace(src, dst, *a, **k):
        if Path(dst).name == "current":  # the new link exists, the rename has not happened
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *a, **k)
    os.replace = replace  # this subprocess only
from rag.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("point", ["bm25", "swap"])
def test_kill_during_bm25_write_or_swap_leaves_the_previous_index(
    point: str, docs: Path, tmp_path: Path, emb: MemoEmbedder
) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    ingest([docs / "a.txt"], settings, emb)
    cur = current_generation(Path(settings.index_dir))
    n_gens = len(list(Path(settings.index_dir).glob("gen-*")))
    r = subprocess.run(
        [sys.executable, "-c", KILL_AT, point, "ingest", str(docs), "--index", str(settings.index_dir)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == -9, r.stderr[-2000:]
    assert current_generation(Path(settings.index_dir)) == cur
    assert len(list(Path(settings.index_dir).glob("gen-*"))) == n_gens + 1  # the killed build is left behind …
    if point == "swap":  # complete but never made current, with its new link still aside
        assert not half_built(settings) and list(Path(settings.index_dir).glob(".current-*"))
    else:
        assert half_built(settings)
    assert answers(settings, emb, QUESTION_A, "2022年6月底前")  # … and the old index answers
    rep = ingest([docs], settings, emb)
    assert rep.ok and rep.added == ["b.txt"] and half_built(settings) == []
    assert not list(Path(settings.index_dir).glob(".current-*"))


def _mount_small_fs(image: Path, mnt: Path) -> bool:
    """An 8 MB ext4 image on a loop device, a disk that really fills up; a 3 MB tmpfs where loop
    devices are not available."""
    cmds = [
        ["truncate", "-s", "8M", str(image)],
        ["mkfs.ext4", "-q", "-F", str(image)],
        ["mount", "-o", "loop", str(image), str(mnt)],
    ]
    if all(subprocess.run(c, capture_output=True).returncode == 0 for c in cmds):
        return True
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True).returncode
        == 0
    )


def test_full_disk_gives_a_clear_error_and_keeps_the_previous_index(
    docs: Path, tmp_path: Path, emb: MemoEmbedder
) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if not _mount_small_fs(tmp_path / "disk.img", mnt):
        pytest.skip("cannot mount a small filesystem here (needs root: loop device or tmpfs)")
    try:
        settings = Settings(index_dir=mnt / "index")
        ingest([docs / "a.txt"], settings, emb)
        cur = current_generation(Path(settings.index_dir))
        # Fill the disk but for a little: the next generation's copy of the vector store cannot fit.
        free = shutil.disk_usage(mnt).free
        (mnt / "filler").write_bytes(b"\0" * max(0, free - 64 * 1024))
        before = sorted(p.name for p in Path(settings.index_dir).iterdir())
        with pytest.raises(StoreError, match="磁盘空间不足") as e:
            ingest([docs], settings, emb)
        assert "no space left" in str(e.value)
        now = current_generation(Path(settings.index_dir))
        if "searchable by keywords" in str(e.value):
            # The disk filled while the vectors were written: the BM25-first generation (every
            # document, vectors pending) is in, complete, and the message says so.
            assert now != cur and half_built(settings) == []
            assert (now / "pending.txt").read_text("utf-8").strip()
        else:  # it filled before that generation was in: nothing changed, nothing half written
            assert now == cur
            assert sorted(p.name for p in Path(settings.index_dir).iterdir()) == before
        assert answers(settings, emb, QUESTION_A, "2022年6月底前")
        (mnt / "filler").unlink()  # space again: the vectors follow, nothing was lost
        rep = ingest([docs], settings, emb)
        assert rep.ok and rep.pending == 0, rep
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        shutil.rmtree(mnt, ignore_errors=True)
