"""The anchor for the indexing goal: LlamaIndex, with its defaults, ingesting a BEIR corpus
with the same embedding model on this machine.

LlamaIndex is not one of our dependencies, so this runs in a virtual environment of its own
(``make bench-indexing`` builds it in ``.venv-llamaindex``), started by
``indexing_benchmark.py --llamaindex-python``, which hands it the corpus and the judged
queries as read by our own BEIR loader (one JSON file):

    .venv-llamaindex/bin/python benchmarks/llamaindex_baseline.py \
        --dataset dataset.json --model PATH_TO_all-MiniLM-L6-v2 --run run.json

It times ``VectorStoreIndex.from_documents`` (LlamaIndex's SentenceSplitter with its default
1,024-token chunks, HuggingFaceEmbedding with its default batch of 10, its in-memory vector
store), then retrieves the top 100 for every query and writes that run to ``--run``, which the
caller scores with the same nDCG@10 code as ours. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        required=True,
        help='JSON: {"documents": {id: text}, "queries": {id: text}}',
    )
    parser.add_argument(
        "--model", required=True, help="folder of all-MiniLM-L6-v2 (the packaged one)"
    )
    parser.add_argument(
        "--run", type=Path, required=True, help="where to write the retrieval run (JSON)"
    )
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"

    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    dataset = json.loads(args.dataset.read_text(encoding="utf-8"))
    documents = [Document(text=text, id_=doc_id) for doc_id, text in dataset["documents"].items()]
    Settings.embed_model = HuggingFaceEmbedding(model_name=args.model, device="cpu")
    Settings.embed_model.get_text_embedding("warm up")  # model loading is not indexing

    started = time.perf_counter()
    index = VectorStoreIndex.from_documents(documents)
    index_seconds = time.perf_counter() - started
    chunks = len(index.index_struct.nodes_dict)

    retriever = index.as_retriever(similarity_top_k=100)
    run: dict[str, dict[str, float]] = {}
    for query_id, query in dataset["queries"].items():
        scores: dict[str, float] = {}
        for hit in retriever.retrieve(query):
            doc_id = hit.node.ref_doc_id or ""
            scores[doc_id] = max(scores.get(doc_id, float("-inf")), float(hit.score or 0.0))
        run[query_id] = scores
    args.run.write_text(json.dumps(run))

    print(json.dumps({
        "baseline": "llamaindex", "documents": len(documents), "chunks": chunks,
        "index_seconds": round(index_seconds, 1), "chunks_per_s": round(chunks / index_seconds, 1),
        "documents_per_s": round(len(documents) / index_seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
