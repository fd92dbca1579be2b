"""What reading files in a child process (issue 18) costs, and what two ingestion workers buy.

1. Per-file cost of ``read_isolated`` against ``read_direct`` on small files (the
   corpus's formats, copied ``--copies`` times) and on SciFact's one 8 MB JSONL.
2. ``Indexer.index_paths`` on the test corpus with ``isolate_readers`` never/always.
3. Through the HTTP app (real embedder, SQLite, closed model port): how long a
   small text upload waits while a slow DOCX (passes the archive check, parses
   for ~10 s, stopped by the time budget) is being read, with 1 and 2 workers;
   and the service's peak memory over the hostile uploads.

    python benchmarks/reader_isolation_benchmark.py --out benchmarks/reader_isolation.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from indexer.limits import ReadLimits
from indexer.pipeline import Indexer
from indexer.readers import ReaderOptions
from indexer.sandbox import ReaderBudget, read_direct, read_isolated
from rag.collections.store import CollectionStore
from rag.embedding.factory import make_embedder
from rag.generation.vllm_server import free_port
from tests.conftest import CORPUS_DIR, MODELS_DIR, make_settings
from tests.hostile_files import slow_docx, yaml_alias_bomb

SCIFACT = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "evaldata" / "scifact" / "corpus.jsonl"
)


def machine() -> dict[str, object]:
    flags: set[str] = set()
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "load_average_1m": os.getloadavg()[0],
        "flags": {
            f: f in flags for f in ("avx512_vnni", "amx_tile", "amx_int8", "avx512_bf16", "avx2")
        },
        "python": platform.python_version(),
        "versions": {
            p: version(p)
            for p in (
                "python-docx",
                "pypdf",
                "PyYAML",
                "python-frontmatter",
                "openvino",
                "faiss-cpu",
            )
        },
    }


def per_file(folder: Path, copies: int) -> dict[str, float]:
    files = []
    for index in range(copies):
        for source in sorted(CORPUS_DIR.iterdir()):
            target = folder / f"{index}-{source.name}"
            shutil.copy(source, target)
            files.append(target)
    options = ReaderOptions()
    read_isolated(files[0], options, ReaderBudget())  # the fork server's start is not per file
    timings = {}
    for name, read in (
        ("direct", lambda p: read_direct(p, options)),
        ("isolated", lambda p: read_isolated(p, options, ReaderBudget())),
    ):
        started = time.perf_counter()
        for path in files:
            read(path)
        timings[f"{name}_ms_per_file"] = round(
            1000 * (time.perf_counter() - started) / len(files), 2
        )
    timings["files"] = len(files)
    if SCIFACT.exists():
        for name, read in (
            ("direct", lambda p: read_direct(p, options)),
            ("isolated", lambda p: read_isolated(p, options, ReaderBudget())),
        ):
            started = time.perf_counter()
            documents = len(read(SCIFACT).documents)
            timings[f"scifact_jsonl_{name}_s"] = round(time.perf_counter() - started, 2)
        timings["scifact_documents"] = documents
    return timings


def corpus_indexing(folder: Path) -> dict[str, float]:
    results = {}
    embedder = None
    for mode in ("never", "always", "never", "always"):
        settings = make_settings(
            folder / f"index-{mode}-{time.monotonic_ns()}", indexing={"isolate_readers": mode}
        )
        embedder = embedder or make_embedder(settings.embedding, MODELS_DIR)
        store = CollectionStore(settings, embedder)
        started = time.perf_counter()
        report = Indexer(store).index_paths([CORPUS_DIR])
        results.setdefault(f"corpus_index_{mode}_s", []).append(
            round(time.perf_counter() - started, 2)
        )  # type: ignore[attr-defined]
        assert report.added and not report.failed, report.as_dict()
        store.close()
    return {key: min(values) for key, values in results.items()}  # type: ignore[type-var]


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) / 1024


def upload_latency(folder: Path, workers: int) -> dict[str, float]:
    settings = make_settings(
        folder / f"api-{workers}",
        llm={"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "none", "max_retries": 0},
        api={"auth": "off", "ingestion_workers": workers},
        indexing={"reader_timeout_s": 5.0},
    )
    slow = slow_docx(100_000)
    with TestClient(create_app(settings)) as client:
        warm = client.post(
            "/documents", data={"text": "warm up the embedder", "collection": "c"}
        ).json()["id"]
        wait(client, warm)
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        before = peak_rss_mb()
        client.post("/documents", files={"file": ("slow.docx", slow)}, data={"collection": "a"})
        client.post(
            "/documents",
            files={"file": ("laughs.md", yaml_alias_bomb().encode())},
            data={"collection": "a"},
        )
        started = time.perf_counter()
        quick = client.post(
            "/documents", data={"text": "Otters hold hands.", "collection": "b"}
        ).json()["id"]
        wait(client, quick)
        latency = time.perf_counter() - started
        return {
            "quick_upload_latency_s": round(latency, 2),
            "service_peak_rss_increase_mb": round(peak_rss_mb() - before, 1),
        }


def wait(client: TestClient, job_id: str) -> None:
    while client.get(f"/jobs/{job_id}").json()["status"] not in ("succeeded", "failed"):
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/reader_isolation.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        (folder / "files").mkdir()
        result: dict[str, object] = {
            "machine": machine(),
            "limits": dataclasses.asdict(ReadLimits()),
        }
        result["per_file"] = per_file(folder / "files", args.copies)
        print(json.dumps(result["per_file"]))
        result["corpus_indexing"] = corpus_indexing(folder)
        print(json.dumps(result["corpus_indexing"]))
        result["uploads_while_a_slow_docx_is_read"] = {
            f"{workers}_workers": upload_latency(folder, workers) for workers in (1, 2)
        }
        print(json.dumps(result["uploads_while_a_slow_docx_is_read"]))
    result["machine_after"] = {"load_average_1m": os.getloadavg()[0]}
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
