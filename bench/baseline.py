"""The naive LangChain baseline: RecursiveCharacterTextSplitter with Chinese separators, Chroma
through langchain_chroma with the same embedder, and the top chunk as the answer."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from corpus import baseline_splitter, files

from rag.core.types import Answer, Chunk, Citation, Hit
from rag.index.embed import Embedder, LangchainEmbeddings
from rag.ingest.load import load_document, read_text

COLLECTION = "langchain"


def build(paths: list[Path], index: Path, embedder: Embedder) -> dict[str, Any]:
    """Split and index every file; returns timing. Districts (for the eval's confusion metric
    only, never used to retrieve) are read with our loader outside the timed part."""
    from langchain_chroma import Chroma
    from langchain_core.documents import Document

    shutil.rmtree(index, ignore_errors=True)
    fs = files(paths)
    district = {f.name: load_document(f).district or "" for f in fs}
    t0 = time.perf_counter()
    splitter = baseline_splitter()
    docs: list[Document] = []
    ids: list[str] = []
    failed = 0
    for f in fs:
        try:
            text = read_text(f)
        except Exception:  # noqa: BLE001 - the naive loader just skips what it cannot read
            failed += 1
            continue
        for i, part in enumerate(splitter.split_text(text)):
            docs.append(Document(page_content=part, metadata={"source": f.name, "i": i, "district": district[f.name]}))
            ids.append(f"{f.name}#{i}")
    Chroma.from_documents(docs, LangchainEmbeddings(embedder), ids=ids, persist_directory=str(index))
    return {"seconds": time.perf_counter() - t0, "chunks": len(docs), "failed": failed}


class Baseline:
    """Answers with the text of the single most similar chunk; never abstains."""

    def __init__(self, index: Path, embedder: Embedder, k: int = 10) -> None:
        from langchain_chroma import Chroma

        self.vs = Chroma(persist_directory=str(index), embedding_function=LangchainEmbeddings(embedder))
        self.k = k

    def count(self) -> int:
        return len(self.vs.get(include=[])["ids"])  # public API; ids are all a count needs

    def ask(self, question: str) -> Answer:
        t0 = time.perf_counter()
        pairs = self.vs.similarity_search_with_score(question, k=self.k)
        t1 = time.perf_counter()
        hits = []
        for doc, dist in pairs:
            m = doc.metadata
            chunk = Chunk(
                id=str(doc.id),
                doc_id=str(m["source"]),
                text=doc.page_content,
                section_path=(),
                order=int(m["i"]),
                title=str(m["source"]),
                district=str(m.get("district") or "") or None,
                source=str(m["source"]),
            )
            hits.append(Hit(chunk, -float(dist)))
        top = hits[0]
        answer = Answer(
            question,
            top.chunk.text,
            False,
            (Citation(1, top.chunk, top.chunk.text, top.score),),
            tuple(hits),
            {"retrieve": (t1 - t0) * 1000, "total": (time.perf_counter() - t0) * 1000},
        )
        return answer
