"""Stress: `rag index` into a fresh data dir and a fresh models dir, many times (issue 12, item 3).

    .venv/bin/python benchmarks/export_index_stress.py --beir ../shared/evaldata/scifact \
        [--runs 10] [--docs 300] [--backend openvino-int8] [--in-process] [--gdb] [--output F.json]

Each run is one new process that first exports the encoder (ONNX export, NNCF calibration
for openvino-int8) and then indexes the first ``--docs`` documents of the corpus, the path on
which `rag index` once died with SIGSEGV right after calibration. ``--in-process`` runs that
path as it was before the fix (export and calibration in the indexing process itself), to
compare. Runs get ``PYTHONFAULTHANDLER=1`` (the Python stack of every thread on a crash) and
the caller's ``TOKENIZERS_PARALLELISM`` (``false`` if unset, as `make` sets it; a user running
`rag index` directly has the tokenizers' thread pool on); ``--gdb`` runs each one under gdb
and keeps the native stack of every thread. Prints one JSON object: runs, failures (exit
status or signal, the tail of stderr), seconds per run and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
GDB = [
    "gdb",
    "-q",
    "-batch",
    "-ex",
    "set pagination off",
    "-ex",
    "run",
    "-ex",
    "thread apply all bt 40",
    "--args",
]
INDEX = "import sys; from cli.main import app; sys.argv[0] = 'rag'; app()"
# Before the fix: the encoder exported (and NNCF calibrated) in the process that then indexes.
IN_PROCESS = (
    "import rag.embedding.export as e\n"
    "def in_process(backend, model_path, target, exported):\n"
    "    return exported if exported.exists() else e._exporters()[backend](model_path, target)\n"
    "import rag.embedding.openvino as o, rag.embedding.onnx as x\n"
    "o.exported_in_child = x.exported_in_child = in_process\n"
)


def write_corpus(beir: Path, docs: int, target: Path) -> Path:
    """The first ``docs`` BEIR documents as the JSONL `rag index` reads (``title + " " + text``)."""
    lines = []
    with (beir / "corpus.jsonl").open(encoding="utf-8") as corpus:
        for line, _ in zip(corpus, range(docs), strict=False):
            row = json.loads(line)
            lines.append(
                json.dumps(
                    {"id": row["_id"], "text": f"{row.get('title', '')} {row['text']}".strip()}
                )
            )
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def one_run(corpus: Path, backend: str, under_gdb: bool, in_process: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="rag-stress-") as scratch:
        env = {
            **os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONFAULTHANDLER": "1", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": os.environ.get("TOKENIZERS_PARALLELISM", "false"), "RAG_DATA_DIR": f"{scratch}/data", "RAG_MODELS_DIR": f"{scratch}/models",
            "RAG_EMBEDDING__BACKEND": backend, "RAG_LOG_LEVEL": "INFO",
        }  # fmt: skip
        code = (IN_PROCESS if in_process else "") + INDEX
        command = [sys.executable, "-c", code, "index", "--json", str(corpus)]
        started = time.perf_counter()
        done = subprocess.run(
            (GDB if under_gdb else []) + command, env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
    output = done.stdout + done.stderr
    crashed = done.returncode < 0 or "Fatal Python error" in output or "received signal" in output
    result: dict[str, object] = {
        "seconds": round(seconds, 1),
        "returncode": done.returncode,
        "crashed": crashed,
    }
    if done.returncode < 0:
        result["signal"] = signal.Signals(-done.returncode).name
    if crashed or done.returncode != 0:
        result["output_tail"] = output[-12000:]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument(
        "--backend", default="openvino-int8", choices=["openvino-int8", "onnx-int8"]
    )
    parser.add_argument(
        "--in-process", action="store_true", help="export in the indexing process (before the fix)"
    )
    parser.add_argument(
        "--gdb", action="store_true", help="run each under gdb: native stacks on a crash"
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    from evaluation.machine import machine_info

    runs = []
    with tempfile.TemporaryDirectory(prefix="rag-stress-corpus-") as scratch:
        corpus = write_corpus(args.beir, args.docs, Path(scratch) / "corpus.jsonl")
        for number in range(args.runs):
            runs.append(one_run(corpus, args.backend, args.gdb, args.in_process))
            print(
                json.dumps(
                    {"run": number, **{k: v for k, v in runs[-1].items() if k != "output_tail"}}
                ),
                file=sys.stderr,
            )
    result = {
        "backend": args.backend, "export": "in the indexing process" if args.in_process else "in a child process",
        "documents": args.docs, "runs": len(runs),
        "crashes": sum(1 for run in runs if run["crashed"]),
        "failures": sum(1 for run in runs if run["returncode"] != 0),
        "seconds_per_run": round(sum(float(run["seconds"]) for run in runs) / max(len(runs), 1), 1),  # type: ignore[arg-type]
        "failed_runs": [run for run in runs if run["crashed"] or run["returncode"] != 0],
        "machine": machine_info(),
    }  # fmt: skip
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
