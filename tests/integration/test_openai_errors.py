"""The OpenAI routes when the model server is dead, and their documented error shape
(real app, embedder, faiss and SQLite; the model server is a closed port)."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from indexer.pipeline import Indexer
from rag.generation.vllm_server import free_port
from tests.conftest import CORPUS_DIR, make_settings

pytestmark = [pytest.mark.integration]


def test_dead_model_server_gives_a_fast_503_in_openai_shape(
    tmp_path: Path, database_url: str
) -> None:
    """On each database (GET /v1/models reads the collections' rows)."""
    settings = make_settings(
        tmp_path / "data",
        database_url,
        llm={"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "none", "max_retries": 0},
        api={"auth": "off"},
    )
    with TestClient(create_app(settings)) as dead:
        store = dead.app.state.container.catalog.writable_store("default")  # type: ignore[attr-defined]
        Indexer(store).index_paths([CORPUS_DIR / "glacier.txt"])
        store.close()
        client = openai.OpenAI(
            base_url="http://testserver/v1", api_key="unused", http_client=dead, max_retries=0
        )
        assert [model.id for model in client.models.list().data] == [
            "rag",
            "rag/default",
        ]  # no model call
        messages = [{"role": "user", "content": "How long is the Aletsch glacier?"}]
        for stream in (False, True):
            started = time.monotonic()
            with pytest.raises(openai.InternalServerError) as caught:
                client.chat.completions.create(
                    model="rag/default", messages=messages, stream=stream
                )  # type: ignore[call-overload]
            assert time.monotonic() - started < 10
            assert caught.value.status_code == 503
            assert caught.value.response.headers["retry-after"].isdigit()
            assert caught.value.body == {  # type: ignore[comparison-overlap]
                "message": caught.value.body["message"],  # type: ignore[index]
                "type": "server_error", "param": None, "code": "llm_unavailable",
            }  # fmt: skip
        follow_up = [
            *messages,
            {"role": "assistant", "content": "About 20 km."},
            {"role": "user", "content": "and?"},
        ]
        with pytest.raises(openai.InternalServerError):  # the condensation call fails fast too
            client.chat.completions.create(model="rag", messages=follow_up)  # type: ignore[arg-type]


def test_openai_routes_document_openai_errors(tmp_path: Path) -> None:
    schema = create_app(make_settings(tmp_path / "data")).openapi()
    responses = schema["paths"]["/v1/chat/completions"]["post"]["responses"]
    for status in ("400", "401", "404", "503"):
        assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/OpenAIErrorResponse"
        )
    assert "text/event-stream" in responses["200"]["content"]
    assert set(schema["paths"]) >= {"/v1/models", "/v1/models/{model}"}
