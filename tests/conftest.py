"""Shared fixtures: real embedder, real SQLite/PostgreSQL, real vLLM on the tiny model, and a
scripted OpenAI-compatible model server for the answer paths the tiny model never takes."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rag.config import Settings
from rag.embedding.embedder import SentenceTransformersEmbedder
from rag.embedding.factory import make_embedder
from rag.protocols import Embedder
from tests.fake_model_server import FakeModelServer
from tests.model_server import SharedModelServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = Path(__file__).resolve().parent / "data" / "corpus"
POSTGRES_ENV = "RAG_TEST_POSTGRES_URL"
# Prepared once by `make install` (rag models prepare) into the user's model cache; shared by every test.
MODELS_DIR = Settings().model_cache_dir
# Its address is fixed at import; the `model_server` fixture starts it on first use.
SHARED_MODEL_SERVER = SharedModelServer(MODELS_DIR)


def postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_ENV)


@contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file, or a PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'test.sqlite3'}"
        return
    admin = postgres_admin_url()
    if not admin:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    name = f"rag_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The default encoder backend, as the service and the indexer build it."""
    model = make_embedder(Settings().embedding, MODELS_DIR)
    model.embed(["warm up"])
    return model


@pytest.fixture(scope="session")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedModelServer]:
    """The session's one vLLM for tests that need answers but not the embedded server's lifecycle."""
    SHARED_MODEL_SERVER.start(tmp_path_factory.mktemp("model-server"))
    yield SHARED_MODEL_SERVER
    SHARED_MODEL_SERVER.stop()


@pytest.fixture(scope="session")
def fake_model_server() -> Iterator[FakeModelServer]:
    """One scripted model server for the session (tests/fake_model_server.py); use ``fake_model``."""
    server = FakeModelServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_model(fake_model_server: FakeModelServer) -> Iterator[FakeModelServer]:
    """The scripted model server with an empty queue and no recorded requests; a reply the
    test scripted but the service never asked for fails the test."""
    fake_model_server.reset()
    yield fake_model_server
    left, errors = fake_model_server.pending, list(fake_model_server.errors)
    fake_model_server.reset()
    assert not errors, f"a scripted reply of the fake model server failed: {errors}"
    assert left == 0, f"{left} scripted replies of the fake model server were never requested"


@pytest.fixture(scope="session")
def torch_embedder() -> SentenceTransformersEmbedder:
    model = SentenceTransformersEmbedder(Settings().embedding)
    model.warm_up()
    return model


def make_settings(data_dir: Path, database_url: str | None = None, **overrides: object) -> Settings:
    return Settings(
        data_dir=data_dir, database_url=database_url, models_dir=MODELS_DIR, **overrides
    )  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A writable copy of the test corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS_DIR, target)
    return target
