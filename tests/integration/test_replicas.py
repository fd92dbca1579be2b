"""Replicas that share only PostgreSQL: `rag serve` processes with data dirs of their own.

Each replica's faiss and BM25 indexes are a cache that follows SQL's change log; nothing is
shared but the database. The model is the scripted fake server (the outside service), so
the test measures the replicas, not generation.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODELS_DIR, fresh_database
from tests.fake_model_server import FakeModelServer
from tests.service_process import serve_in_process

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

FOLLOW_DEADLINE_S = 10.0
LIGHTHOUSE = "The Skerry lighthouse tower is 32 metres tall and was first lit in 1871.\n"
ORCHARD = "The orchard's apple harvest begins in the second week of September.\n"


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


@pytest.fixture
def replica_env(postgres_url: str, fake_model: FakeModelServer) -> dict[str, str]:
    return {
        "RAG_DATABASE_URL": postgres_url,
        "RAG_MODELS_DIR": str(MODELS_DIR),
        "RAG_LLM__BASE_URL": fake_model.base_url,
        "RAG_LLM__TOKENIZER": str(MODELS_DIR / "smollm2-135m-instruct-f32"),
        "RAG_API__AUTH": "off",
        "RAG_API__WARM_UP": "false",  # the fake answers only the test's own questions
        "RAG_INDEXING__FOLLOW_INTERVAL_S": "0.5",
    }


def vectors_of(url: str, collection: str = "default") -> int:
    """What the replica's own cache holds, from its metrics (never from SQL)."""
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.search(rf'^rag_index_vectors{{collection="{collection}"}} (\S+)$', metrics, re.M)
    return int(float(found.group(1))) if found else 0


def wait_for(condition: object, what: str) -> float:
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - started > FOLLOW_DEADLINE_S:
            pytest.fail(f"{what} took longer than {FOLLOW_DEADLINE_S:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def upload(url: str, name: str, text: str) -> int:
    response = httpx.post(
        f"{url}/documents", files={"file": (name, text.encode(), "text/plain")}, timeout=30
    )
    assert response.status_code == 202, response.text
    job = response.json()
    deadline = time.monotonic() + 120
    while job["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
        job = httpx.get(f"{url}/jobs/{job['id']}", timeout=10).json()
    assert job["status"] == "succeeded", job
    documents = httpx.get(f"{url}/documents", timeout=10).json()["documents"]
    return next(d["id"] for d in documents if Path(d["source"]).name.startswith(Path(name).stem))


def asked_sources(url: str, fake_model: FakeModelServer, question: str) -> set[str]:
    fake_model.enqueue("From the context.")
    response = httpx.post(f"{url}/ask", json={"question": question, "top_k": 3}, timeout=60)
    assert response.status_code == 200, response.text
    return {Path(s["metadata"]["source"]).name for s in response.json()["sources"]}


def test_replicas_share_only_postgresql(
    tmp_path: Path, replica_env: dict[str, str], fake_model: FakeModelServer
) -> None:
    with ExitStack() as stack:
        first = stack.enter_context(serve_in_process(tmp_path / "first", replica_env))
        second = stack.enter_context(serve_in_process(tmp_path / "second", replica_env))

        upload(first, "orchard.txt", ORCHARD)
        wait_for(lambda: vectors_of(second) == vectors_of(first) > 0, "the second replica's cache")
        # The second replica's cache is open now: what follows reaches it through the change log.
        lighthouse_id = upload(first, "lighthouse.txt", LIGHTHOUSE)
        chunks = vectors_of(first)  # the writing replica answers from it at once
        wait_for(lambda: vectors_of(second) == chunks, "the second replica following the upload")
        assert "lighthouse.txt" in asked_sources(second, fake_model, "How tall is the lighthouse?")

        # Deleted through the second, gone from the first within the deadline.
        assert httpx.delete(f"{second}/documents/{lighthouse_id}", timeout=30).status_code == 204
        wait_for(lambda: vectors_of(first) < chunks, "the first replica following the deletion")
        assert "lighthouse.txt" not in asked_sources(
            first, fake_model, "How tall is the lighthouse?"
        )
        fake_model.reset()  # nothing relevant is left: the service abstained without the model

        # A third replica with an empty data dir builds its cache from SQL and answers.
        third = stack.enter_context(serve_in_process(tmp_path / "third", replica_env))
        assert asked_sources(third, fake_model, "When does the apple harvest begin?") == {
            "orchard.txt"
        }
        assert vectors_of(third) == vectors_of(first) == vectors_of(second)
