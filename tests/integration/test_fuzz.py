"""schemathesis against the OpenAPI schema, on a short budget: no 500, no response outside the schema.

The app runs for real (embedder, SQLite, the embedded vLLM on the tiny model,
answers capped at a few tokens to keep the budget short).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from indexer.pipeline import Indexer
from rag.auth import ApiKeyStore
from rag.embedding import Embedder
from rag.llm.embedded_server import free_port
from rag.store import KnowledgeStore
from tests.conftest import CORPUS_DIR, make_settings

pytestmark = [pytest.mark.integration, pytest.mark.llm, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


# The app object exists at import (it loads nothing until its lifespan runs) so that
# schemathesis can generate one test per operation; the fixture below starts it.
DATA_DIR = Path(tempfile.mkdtemp(prefix="rag-fuzz-"))
APP_SETTINGS = make_settings(
    DATA_DIR / "data",
    llm={"embedded_port": free_port(), "max_answer_tokens": 8, "max_summary_tokens": 16},
    api={"max_question_chars": 500, "max_summarize_chars": 2000},
)
APP = create_app(APP_SETTINGS)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def admin_key(embedder: Embedder) -> Iterator[str]:
    store = KnowledgeStore(APP_SETTINGS, embedder)
    Indexer(store).index_paths([CORPUS_DIR / "glacier.txt", CORPUS_DIR / "volcano.md"])
    key = ApiKeyStore(store.sessions).create("fuzz", [], admin=True).key
    store.close()
    with TestClient(APP):  # runs the lifespan: container, embedded vLLM
        yield key
    if not os.environ.get("RAG_KEEP_FUZZ_DATA"):
        shutil.rmtree(DATA_DIR, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_no_schema_violation(case: schemathesis.Case, admin_key: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_key}"}, checks=CHECKS)


def test_every_endpoint_is_fuzzed() -> None:
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /ask", "POST /summarize", "GET /documents", "POST /documents",
        "DELETE /documents/{document_id}", "GET /jobs/{job_id}", "GET /health", "GET /metrics",
    }
