"""Each encoder backend's vectors against sentence-transformers' fp32 vectors (issue 12).

    .venv/bin/python benchmarks/encoder_agreement.py --beir ../shared/evaldata/scifact \
        [--backends openvino-int8,onnx-int8,torch] [--openvino-precision f32|bf16] [--output F.json]

Cosine mean and min over 100 SciFact test queries and 100 abstracts, one text per call and
in batches (the contract tests/integration/test_encoder_contract.py asserts), the speed (a query
one per call, abstracts in batches of 32), the precision
the OpenVINO model was compiled in, and the machine. ``--openvino-precision bf16`` asks
OpenVINO for bf16 (what its CPU plugin picks by default on AMX/AVX512-BF16 CPUs); on a CPU
without bf16 the compiled precision stays f32 and the figures do not move.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def speed(encoder: object, texts: dict[str, list[str]], rounds: int = 5) -> dict[str, float]:
    """Queries one per call (median ms) and documents in batches of 32 (texts/s), best of ``rounds``."""
    per_query: list[float] = []
    for query in texts["queries"]:
        started = time.perf_counter()
        encoder.embed([query])  # type: ignore[attr-defined]
        per_query.append((time.perf_counter() - started) * 1000)
    batched = []
    for _ in range(rounds):
        started = time.perf_counter()
        for start in range(0, len(texts["documents"]), 32):
            encoder.embed(texts["documents"][start : start + 32])  # type: ignore[attr-defined]
        batched.append(len(texts["documents"]) / (time.perf_counter() - started))
    return {
        "query_ms_p50": round(sorted(per_query)[len(per_query) // 2], 2),
        "documents_per_s": round(max(batched), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--backends", default="openvino-int8,onnx-int8,torch")
    parser.add_argument("--openvino-precision", default="f32")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    from evaluation.embedder_agreement import agreement, scifact_sample
    from evaluation.machine import machine_info
    from rag.config import EmbeddingSettings, load_settings
    from rag.embedding.embedder import SentenceTransformersEmbedder
    from rag.embedding.factory import make_embedder
    from rag.embedding.openvino import OpenVinoInt8Embedder

    sample = scifact_sample(args.beir)
    reference_encoder = SentenceTransformersEmbedder(EmbeddingSettings(backend="torch"))
    reference = {
        "queries": reference_encoder.embed(sample.queries),
        "documents": reference_encoder.embed(sample.documents),
    }
    texts = {"queries": sample.queries, "documents": sample.documents}
    models = load_settings().model_cache_dir.resolve()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="rag-agreement-") as scratch:
        for backend in args.backends.split(","):
            settings = EmbeddingSettings(backend=backend)  # type: ignore[arg-type]
            cache = models if backend == EmbeddingSettings().backend else Path(scratch)
            if backend == "openvino-int8":

                class Configured(OpenVinoInt8Embedder):
                    inference_precision = args.openvino_precision

                encoder = Configured(settings, cache / "embedder-openvino-int8")
            else:
                encoder = make_embedder(settings, cache)  # type: ignore[assignment]
            encoder.embed(["warm up"])
            row: dict[str, object] = {}
            if isinstance(encoder, OpenVinoInt8Embedder):
                row["requested_precision"] = args.openvino_precision
                row["compiled_precision"] = encoder.compiled_precision()
            started = time.perf_counter()
            for kind in ("queries", "documents"):
                for per_call in (True, False):
                    measured = agreement(encoder, reference[kind], texts[kind], per_call)
                    row[f"{kind}_{'one_per_call' if per_call else 'batched'}"] = measured.as_dict()
            row["seconds"] = round(time.perf_counter() - started, 1)
            row["speed"] = speed(encoder, texts)
            results[backend] = row
            print(json.dumps({backend: row}), file=sys.stderr)
    text = json.dumps(
        {
            "texts": {k: len(v) for k, v in texts.items()},
            "backends": results,
            "machine": machine_info(),
        },
        indent=2,
    )
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
