"""The index: embedders, BM25, Chroma vectors, the embedding cache and atomic on-disk generations."""
