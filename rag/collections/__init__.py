"""Collections: valid names, one collection's store (SQL with its faiss and BM25 indexes),
and the catalog of every collection a process serves."""
