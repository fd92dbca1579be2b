"""schemathesis against the OpenAPI schema, on a short budget: no 500, no response outside the schema.

The app runs for real (embedder, SQLite or PostgreSQL, the session's shared vLLM on the
tiny model, answers capped at a few tokens to keep the budget short).
"""

from __future__ import annotations

import json
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.app import create_app
from indexer.pipeline import Indexer
from rag.access.api_keys import ApiKeyStore
from rag.collections.store import CollectionStore
from rag.config import Settings
from rag.protocols import Embedder
from rag.retrieval.filters import OPERATORS
from tests.conftest import (
    CORPUS_DIR,
    POSTGRES_ENV,
    SHARED_MODEL_SERVER,
    make_settings,
    postgres_admin_url,
)
from tests.model_server import SharedModelServer

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
        llm=SHARED_MODEL_SERVER.llm_settings(max_answer_tokens=8, max_summary_tokens=16),
        api={"max_question_chars": 500, "max_summarize_chars": 2000},
    )


SQLITE_SETTINGS = fuzz_settings("sqlite", None)
POSTGRES_SETTINGS = fuzz_settings(
    "postgresql",
    make_url(POSTGRES_ADMIN_URL)
    .set(database=POSTGRES_DATABASE)
    .render_as_string(hide_password=False)
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
    store = CollectionStore(app_settings, embedder)
    Indexer(store).index_paths([CORPUS_DIR / "glacier.txt", CORPUS_DIR / "volcano.md"])
    key = ApiKeyStore(store.sessions).create("fuzz", [], admin=True).key
    store.close()
    with TestClient(app):  # type: ignore[arg-type]  # runs the lifespan: the container
        yield key


@pytest.fixture(scope="module")
def sqlite_key(embedder: Embedder, model_server: SharedModelServer) -> Iterator[str]:
    with running(SQLITE_SETTINGS, SQLITE_APP, embedder) as key:
        yield key
    if not os.environ.get("RAG_KEEP_FUZZ_DATA"):
        shutil.rmtree(DATA_DIR / "sqlite", ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_key(embedder: Embedder, model_server: SharedModelServer) -> Iterator[str]:
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
@settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_sqlite_no_server_error_and_no_schema_violation(
    case: schemathesis.Case, sqlite_key: str
) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {sqlite_key}"}, checks=CHECKS)


@postgres_schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_postgresql_no_server_error_and_no_schema_violation(
    case: schemathesis.Case, postgres_key: str
) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {postgres_key}"}, checks=CHECKS)


def test_every_endpoint_is_fuzzed() -> None:
    operations = [result.ok() for result in sqlite_schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /ask",
        "POST /summarize",
        "GET /documents",
        "POST /documents",
        "DELETE /documents/{document_id}",
        "GET /jobs/{job_id}",
        "GET /health",
        "GET /metrics",
        "GET /v1/models",
        "GET /v1/models/{model}",
        "POST /v1/chat/completions",
    }


# Hostile values the schema does not describe (issue 18): filter keys that are not field names,
# numbers beyond a float, NaN and infinities, nesting far beyond the limit, in filters and in
# upload metadata. Each goes through schemathesis's own checks: no 500, nothing outside the schema.
HOSTILE_KEYS = st.one_of(
    st.sampled_from(
        ['source" OR 1=1 --', 'a"b', "a\\b", "$", "$.a[0]", "", " ", "x" * 129, "a\nb", "og:title"]
    ),
    st.text(alphabet="\"\\'$.[]*()-_: \t\nab", max_size=12),
    st.text(max_size=40),
)
HUGE_NUMBERS = st.one_of(
    st.integers(min_value=2**1024, max_value=10**400),
    st.integers(min_value=-(10**400), max_value=-(2**1024)),
    st.sampled_from([1.7e308, -1.7e308, 10**308, 2 * 10**308]),
)  # NaN and the infinities cannot be sent by a JSON client library: raw below


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


DEEP = st.integers(min_value=30, max_value=600).map(
    nested
)  # deeper ones are sent as raw text below
VALUES = st.one_of(HUGE_NUMBERS, DEEP, st.text(max_size=12), st.booleans())
HOSTILE_FILTERS = st.dictionaries(
    HOSTILE_KEYS,
    st.one_of(
        VALUES,
        st.dictionaries(
            st.sampled_from(OPERATORS),
            st.one_of(VALUES, st.lists(VALUES, max_size=3)),
            min_size=1,
            max_size=2,
        ),
    ),  # fmt: skip
    min_size=1,
    max_size=3,
)
HOSTILE_METADATA = st.one_of(
    st.integers(min_value=30, max_value=100_000).map(lambda d: '{"a": ' * d + "1" + "}" * d),
    st.sampled_from(
        [
            '{"a": NaN}',
            '{"a": Infinity}',
            '{"a": 1e999}',
            '{"a": "\\ud800"}',
            '{"a": ' + "9" * 400 + "}",
        ]
    ),
    st.integers(min_value=60_000, max_value=200_000).map(lambda n: '{"a": "' + "m" * n + '"}'),
    st.dictionaries(HOSTILE_KEYS, VALUES, max_size=3).map(lambda d: json.dumps(d)),
)


def _fuzz_hostile(
    schema: schemathesis.BaseSchema, key: str, filters: dict[str, object], metadata: str
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    ask = schema["/ask"]["POST"].Case(
        body={"question": "zqxw vutr", "filters": filters}, media_type="application/json"
    )
    ask.call_and_validate(headers=headers, checks=CHECKS)
    upload = schema["/documents"]["POST"].Case(
        body={"text": "Fuzzed metadata.", "metadata": metadata, "source": "fuzz-metadata"},
        media_type="multipart/form-data",
    )
    upload.call_and_validate(headers=headers, checks=CHECKS)


@given(filters=HOSTILE_FILTERS, metadata=HOSTILE_METADATA)
@settings(
    max_examples=3 * EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_sqlite_hostile_filters_and_metadata(
    filters: dict[str, object], metadata: str, sqlite_key: str
) -> None:
    _fuzz_hostile(sqlite_schema, sqlite_key, filters, metadata)


@given(filters=HOSTILE_FILTERS, metadata=HOSTILE_METADATA)
@settings(
    max_examples=3 * EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_postgresql_hostile_filters_and_metadata(
    filters: dict[str, object], metadata: str, postgres_key: str
) -> None:
    _fuzz_hostile(postgres_schema, postgres_key, filters, metadata)


@pytest.mark.parametrize(
    "value",
    [
        "[" * 5_000 + "]" * 5_000,
        "[" * 100_000 + "]" * 100_000,
        "NaN",
        "-Infinity",
        "1e400",
        "9" * 400,
    ],
)
def test_sqlite_json_a_parser_would_choke_on_is_a_documented_400(
    value: str, sqlite_key: str
) -> None:
    body = '{"question": "q", "filters": {"a": ' + value + "}}"
    client = TestClient(SQLITE_APP)  # no `with`: the app is already running, this only sends
    response = client.post("/ask", content=body, headers={"Authorization": f"Bearer {sqlite_key}",
                                                            "content-type": "application/json"})  # fmt: skip
    assert (
        response.status_code == 400
        and "the JSON body was refused" in response.json()["error"]["message"]
    )
