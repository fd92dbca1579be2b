"""schemathesis against the OpenAPI schema, on a short budget: no 500, no response outside the schema.

The app runs for real (embedder, SQLite, the embedded vLLM on the tiny model,
answers capped at a few tokens to keep the budget short).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
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
from rag.config import Settings
from tests.conftest import CORPUS_DIR, POSTGRES_ENV, make_settings, postgres_admin_url

pytestmark = [pytest.mark.integration, pytest.mark.llm, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


# The apps exist at import (they load nothing until their lifespan runs) so that
# schemathesis can generate one test per operation; the fixtures below start them.
DATA_DIR = Path(tempfile.mkdtemp(prefix="rag-fuzz-"))
POSTGRES_ADMIN_URL = postgres_admin_url()
POSTGRES_DATABASE = f"rag_fuzz_{uuid.uuid4().hex[:12]}"


def fuzz_settings(name: str, database_url: str | None) -> Settings:
    return make_settings(
        DATA_DIR / name,
        database_url,
        llm={"embedded_port": free_port(), "max_answer_tokens": 8, "max_summary_tokens": 16},
        api={"max_question_chars": 500, "max_summarize_chars": 2000},
    )


SQLITE_SETTINGS = fuzz_settings("sqlite", None)
POSTGRES_SETTINGS = fuzz_settings(
    "postgresql",
    make_url(POSTGRES_ADMIN_URL).set(database=POSTGRES_DATABASE).render_as_string(hide_password=False)
    if POSTGRES_ADMIN_URL
    else None,
)
SQLITE_APP, POSTGRES_APP = create_app(SQLITE_SETTINGS), create_app(POSTGRES_SETTINGS)


def asgi_schema(app: FastAPI) -> schemathesis.BaseSchema:
    """The app's schema without starting it (from_asgi would run its lifespan to fetch it)."""
    loaded = schemathesis.openapi.from_dict(app.openapi())
    loaded.app = app
    loaded.location = "/openapi.json"
    return loaded


sqlite_schema = asgi_schema(SQLITE_APP)
postgres_schema = asgi_schema(POSTGRES_APP)


@contextmanager
def running(app_settings: Settings, app: object, embedder: Embedder) -> Iterator[str]:
    """The app started on a small corpus; yields an admin key."""
    store = KnowledgeStore(app_settings, embedder)
    Indexer(store).index_paths([CORPUS_DIR / "glacier.txt", CORPUS_DIR / "volcano.md"])
    key = ApiKeyStore(store.sessions).create("fuzz", [], admin=True).key
    store.close()
    with TestClient(app):  # type: ignore[arg-type]  # runs the lifespan: container, embedded vLLM
        yield key


@pytest.fixture(scope="module")
def sqlite_key(embedder: Embedder) -> Iterator[str]:
    with running(SQLITE_SETTINGS, SQLITE_APP, embedder) as key:
        yield key
    if not os.environ.get("RAG_KEEP_FUZZ_DATA"):
        shutil.rmtree(DATA_DIR / "sqlite", ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_key(embedder: Embedder) -> Iterator[str]:
    if not POSTGRES_ADMIN_URL:
        pytest.skip(f"PostgreSQL fuzzing needs {POSTGRES_ENV}")
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{POSTGRES_DATABASE}"'))
    try:
        with running(POSTGRES_SETTINGS, POSTGRES_APP, embedder) as key:
            yield key
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{POSTGRES_DATABASE}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(DATA_DIR, ignore_errors=True)


@sqlite_schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_sqlite_no_server_error_and_no_schema_violation(case: schemathesis.Case, sqlite_key: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {sqlite_key}"}, checks=CHECKS)


@postgres_schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_postgresql_no_server_error_and_no_schema_violation(case: schemathesis.Case, postgres_key: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {postgres_key}"}, checks=CHECKS)


def test_every_endpoint_is_fuzzed() -> None:
    operations = [result.ok() for result in sqlite_schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /ask", "POST /summarize", "GET /documents", "POST /documents",
        "DELETE /documents/{document_id}", "GET /jobs/{job_id}", "GET /health", "GET /metrics",
        "GET /v1/models", "GET /v1/models/{model}", "POST /v1/chat/completions",
    }
