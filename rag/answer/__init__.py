"""Answering: hybrid retrieval, sentence scoring and refusal, reranking, structural lists, citations, the Pipeline."""
