"""Loading refuses decoded junk with a reason and accepts short real text (rag.ingest.load)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import SHARED

from rag.core.errors import InputError
from rag.core.settings import Settings
from rag.index.embed import Embedder
from rag.ingest.build import ingest
from rag.ingest.load import implausible, load_document

ROOT = Path(__file__).resolve().parents[1]


def gb2312_junk(n_pairs: int, seed: int = 0, lead: tuple[int, int] = (0xB0, 0xF7)) -> bytes:
    rnd = random.Random(seed)
    return bytes(b for _ in range(n_pairs) for b in (rnd.randint(*lead), rnd.randint(0xA1, 0xFE)))


@pytest.mark.parametrize("lead", [(0xB0, 0xF7), (0xB0, 0xD7)])  # all of GB2312, and its common level 1 only
def test_random_gb2312_pairs_are_refused_with_a_reason(tmp_path: Path, lead: tuple[int, int]) -> None:
    f = tmp_path / "junk.txt"
    f.write_bytes(gb2312_junk(20_000, lead=lead))  # 40 KB that decodes cleanly as GB18030
    with pytest.raises(InputError, match="不像正常文字") as e:
        load_document(f)
    assert "junk.txt" in str(e.value) and "does not read as text" in str(e.value)


def test_junk_fails_the_ingest_and_nothing_is_indexed(tmp_path: Path, embedder: Embedder) -> None:
    (tmp_path / "junk.txt").write_bytes(gb2312_junk(20_000, seed=1))
    settings = Settings(index_dir=tmp_path / "index")
    rep = ingest([tmp_path / "junk.txt"], settings, embedder)
    assert not rep.ok and rep.added == [] and "不像正常文字" in rep.failed[0][1]
    assert not (tmp_path / "index" / "current").exists()


def test_replacement_and_control_characters_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "ctl.txt"
    f.write_text("上海市规划" + "\x07\x1b\ufffd" * 50 + "正文", "utf-8")
    with pytest.raises(InputError, match="控制字符"):
        load_document(f)


def test_twelve_bytes_of_real_text_is_a_document(tmp_path: Path, embedder: Embedder) -> None:
    f = tmp_path / "short.txt"
    f.write_text("测试内容", "utf-8")
    assert f.stat().st_size == 12
    settings = Settings(index_dir=tmp_path / "index")
    rep = ingest([f], settings, embedder)
    assert rep.ok and rep.added == ["short.txt"] and rep.chunks == 1, rep


def test_empty_and_blank_files_say_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text(" \n\t\n", "utf-8")
    with pytest.raises(InputError, match="文件为空"):
        load_document(tmp_path / "empty.txt")
    with pytest.raises(InputError, match="only whitespace"):
        load_document(tmp_path / "blank.txt")


def _real_texts() -> list[tuple[str, str]]:
    texts = [(p.name, p.read_text("utf-8")) for p in sorted((ROOT / "data" / "docs").glob("*.txt"))]
    extra = sorted((SHARED / "corpus_extra").rglob("*.md"))
    texts += [(p.name, p.read_text("utf-8")) for p in extra[::5]]  # a sample of the 612 files
    bench = SHARED / "bench" / "cmrc2018_dev.json"
    if bench.is_file():
        texts += [(it["context_id"], it["context_text"]) for it in json.loads(bench.read_text("utf-8"))[::2]]
    return texts


def test_real_documents_all_pass() -> None:
    texts = _real_texts()
    if len(texts) < 10:
        pytest.skip("../shared corpora not present")
    refused = [(name, why) for name, text in texts if (why := implausible(text))]
    assert refused == [], refused[:5]
