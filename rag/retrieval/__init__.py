"""Retrieval: metadata filters, dense/keyword/hybrid search, fusion and optional reranking."""
