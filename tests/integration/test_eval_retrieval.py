"""`rag eval retrieval` on a small BEIR-format dataset written by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

pytestmark = pytest.mark.integration

DOCS = {
    "d1": ("Glaciers", "The Aletsch glacier is the largest glacier of the Alps."),
    "d2": ("Bees", "Honeybees dance to tell the hive where flowers are."),
    "d3": ("Volcanoes", "Kilauea is an active shield volcano in Hawaii."),
    "d4": ("Bread", "Sourdough bread rises thanks to wild yeast."),
    "d5": ("Printing", "Gutenberg printed the Bible with movable metal type."),
}
QUERIES = {"q1": ("largest glacier in the Alps", "d1"), "q2": ("how do bees communicate", "d2"),
           "q3": ("Hawaiian shield volcano", "d3"), "q4": ("who printed the first Bible", "d5")}  # fmt: skip


def write_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in DOCS.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in QUERIES.items())
        + json.dumps({"_id": "unjudged", "text": "not in the qrels"})
        + "\n"
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, (_, d) in QUERIES.items())
    )
    return folder


def test_eval_prints_every_mode_as_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["eval", "retrieval", "--beir", str(write_beir(tmp_path / "tiny")), "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(body) == {"dense", "bm25", "hybrid", "default", "embedding_backend", "machine"}
    assert body["default"]["mode"] == "hybrid"
    assert body["embedding_backend"] == "openvino-int8"
    # Where it was measured: the figures depend on the CPU (bf16 on AMX) and the libraries.
    assert body["machine"]["cpu_model"] and body["machine"]["cores"] >= 1
    assert set(body["machine"]["cpu_flags"]) >= {
        "avx512_vnni",
        "avx512_bf16",
        "amx_bf16",
        "amx_int8",
        "amx_tile",
    }
    assert body["machine"]["libraries"]["openvino"]
    for mode in ("dense", "bm25", "hybrid"):
        assert set(body[mode]) == {"ndcg@10", "recall@100", "mrr@10", "ms_per_query"}
        assert body[mode]["recall@100"] == 1.0  # five documents: all are ranked
    assert body["dense"]["ndcg@10"] == 1.0  # each query names its document plainly


def test_eval_reuses_a_kept_index_and_rejects_unknown_modes(tmp_path: Path) -> None:
    dataset = write_beir(tmp_path / "tiny")
    keep = tmp_path / "kept"
    runner = CliRunner()
    first = runner.invoke(
        app,
        [
            "eval",
            "retrieval",
            "--beir",
            str(dataset),
            "--modes",
            "bm25",
            "--data-dir",
            str(keep),
            "--json",
        ],
    )
    assert first.exit_code == 0 and (keep / "rag.sqlite3").exists()
    second = runner.invoke(
        app,
        [
            "eval",
            "retrieval",
            "--beir",
            str(dataset),
            "--modes",
            "dense",
            "--data-dir",
            str(keep),
            "--json",
        ],
    )
    assert second.exit_code == 0 and "dense" in json.loads(second.stdout.strip().splitlines()[-1])
    bad = runner.invoke(app, ["eval", "retrieval", "--beir", str(dataset), "--modes", "magic"])
    assert bad.exit_code != 0 and "unknown mode" in bad.output
