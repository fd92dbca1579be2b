"""The search indexes beside SQL: faiss vectors and BM25 keywords, each a folder with a manifest."""
