"""SIGKILL in the middle of indexing, then the same command again: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MODELS_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FILES, PER_FILE = 8, 500  # a few thousand documents: the indexer needs seconds, not one
WORDS = "river delta sediment glacier basalt orchard lantern harbor meadow copper violin granite".split()


def write_corpus(folder: Path) -> None:
    folder.mkdir()
    for f in range(FILES):
        with (folder / f"part{f}.jsonl").open("w") as out:
            for i in range(PER_FILE):
                words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(40))
                out.write(
                    json.dumps(
                        {
                            "id": f"{f}-{i}",
                            "text": f"Record {f}-{i}. {words}.",
                            "metadata": {"part": f},
                        }
                    )
                    + "\n"
                )


def rag(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "rag"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def chunk_count(database: Path) -> int:
    try:
        with sqlite3.connect(database) as connection:
            return int(connection.execute("SELECT count(*) FROM chunks").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_kill_9_mid_run_then_rerun_is_consistent(tmp_path: Path) -> None:
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    write_corpus(corpus)
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data),
        "RAG_MODELS_DIR": str(MODELS_DIR),
        "RAG_DATABASE_URL": "",
    }
    env.pop("RAG_DATABASE_URL")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "rag"), "index", "--json", str(corpus)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while (
        chunk_count(data / "rag.sqlite3") == 0
        and process.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    time.sleep(1.0)  # somewhere inside the next batch
    assert process.poll() is None, (
        "the indexer finished before it could be killed; make the corpus bigger"
    )
    process.send_signal(signal.SIGKILL)
    process.wait()
    committed = chunk_count(data / "rag.sqlite3")
    assert 0 < committed < FILES * PER_FILE

    rerun = rag("index", "--json", str(corpus), env=env)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["added"] + summary["unchanged"] == FILES * PER_FILE and summary["failed"] == []

    check = rag("check", env=env)
    report = json.loads(check.stdout)
    assert check.returncode == 0 and report["consistent"], report
    assert report["sql_chunks"] == report["vectors"] == chunk_count(data / "rag.sqlite3")
    with sqlite3.connect(data / "rag.sqlite3") as connection:
        documents = connection.execute(
            "SELECT count(*), count(DISTINCT source) FROM documents"
        ).fetchone()
        duplicates = connection.execute(
            "SELECT count(*) FROM (SELECT document_id, ordinal FROM chunks GROUP BY 1, 2 HAVING count(*) > 1)"
        ).fetchone()[0]
    assert documents == (FILES * PER_FILE, FILES * PER_FILE) and duplicates == 0
