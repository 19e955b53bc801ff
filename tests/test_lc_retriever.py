"""The pipeline as a langchain BaseRetriever: cited passages with citation metadata, nothing on refusal."""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from rag.answer.pipeline import Pipeline


def test_invoke_returns_the_cited_passages(pipeline: Pipeline) -> None:
    retriever = pipeline.as_retriever()
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("静安鼓励区内律所去哪些国家开设分支机构？")
    assert docs and all(isinstance(d, Document) for d in docs)
    first = docs[0]
    assert first.metadata["n"] == 1 and first.metadata["district"] == "静安区"
    assert "一带一路" in first.metadata["quote"] and first.metadata["quote"] in first.page_content.replace("\n", "")
    assert {"doc_id", "source", "title", "section", "score"} <= set(first.metadata)
    assert first.id  # the chunk id


def test_refused_question_gives_no_passages_unless_asked(pipeline: Pipeline) -> None:
    question = "浦东新区的律师事务所可以在境外设立分支机构吗？"  # a district the index does not hold
    assert pipeline.as_retriever().invoke(question) == []
    nearest = pipeline.as_retriever(include_refused=True).invoke(question)
    assert nearest and all(d.metadata["n"] is None for d in nearest)


def test_district_scope_is_kept(pipeline: Pipeline) -> None:
    docs = pipeline.as_retriever(district="金山区").invoke("行政复议体制改革什么时候完成？")
    assert docs and {d.metadata["district"] for d in docs} == {"金山区"}
