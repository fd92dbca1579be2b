"""The answer paths the tiny model never takes, through the real service and a scripted model.

The tiny vLLM model never cites, never refuses the way bagel was trained to and never numbers
its answers, so these paths are driven by the scripted model server of
tests/fake_model_server.py, which speaks the OpenAI HTTP interface as vLLM does. Everything
else is real: ``create_app`` with its settings pointing the model base URL at the fake, the
real embedder, faiss, BM25 and the database (SQLite and PostgreSQL), and the service's real
client. Each test indexes its own two documents into its own data folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from indexer.pipeline import Indexer
from rag.answering.service import MODEL_DECLINED
from rag.collections.store import CollectionStore
from rag.config import Settings
from rag.protocols import Embedder
from tests.conftest import MODELS_DIR, make_settings
from tests.fake_model_server import MODEL, FakeModelServer, prompt_of, tokens
from tests.sse import read_events

pytestmark = [pytest.mark.integration]

LIGHTHOUSE_URL = "https://archive.example.org/harbour-lighthouse"
LIGHTHOUSE_TITLE = "Harbour lighthouse history"
ORCHARD_URL = "https://farm.example.org/north-orchard"
ORCHARD_TITLE = "North orchard almanac"
DOCUMENTS = {
    "lighthouse.md": f"""---
title: {LIGHTHOUSE_TITLE}
url: {LIGHTHOUSE_URL}
author: Port Authority Archive
---
# {LIGHTHOUSE_TITLE}

The harbour lighthouse was built in 1874 from local granite.
Its tower is 32 metres tall, and its lamp can be seen 40 kilometres out at sea.
""",
    "orchard.md": f"""---
title: {ORCHARD_TITLE}
url: {ORCHARD_URL}
---
# {ORCHARD_TITLE}

The apple trees of the north orchard blossom in late April.
The apple harvest begins in the second week of September and lasts about six weeks.
""",
}
BUILT = "When was the harbour lighthouse built?"
HARVEST = "When does the apple harvest begin?"
TALL = "How tall is the lighthouse tower?"

OpenService = Callable[..., TestClient]


@pytest.fixture
def open_service(
    tmp_path: Path, database_url: str, fake_model: FakeModelServer, embedder: Embedder
) -> Iterator[OpenService]:
    """Starts the real app on this test's own data (the two documents above), with the model
    base URL at the fake; keyword arguments override ``llm`` settings."""
    folder = tmp_path / "documents"
    folder.mkdir()
    for name, text in DOCUMENTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    tokenizer = Settings(
        models_dir=MODELS_DIR
    ).embedded_generator_dir  # exact token budgets, as in embedded mode

    with ExitStack() as stack:

        def start(**llm: object) -> TestClient:
            settings = make_settings(
                tmp_path / "data", database_url,
                llm={"base_url": fake_model.base_url, "tokenizer": str(tokenizer), **llm},
                api={"auth": "off", "warm_up": False},  # no warm-up call: the fake records only the test's calls
            )  # fmt: skip
            store = CollectionStore(settings, embedder)  # a second start finds them indexed
            report = Indexer(store).index_paths([folder])
            assert report.added + report.unchanged == len(DOCUMENTS)
            store.close()
            return stack.enter_context(TestClient(create_app(settings)))

        yield start


@pytest.fixture
def client(open_service: OpenService) -> TestClient:
    return open_service()


# --- helpers -------------------------------------------------------------------------------
def ask(client: TestClient, payload: dict[str, Any], stream: bool) -> dict[str, Any]:
    """The /ask body: the JSON answer, or a stream's ``done`` event after its ``token`` events
    (whose text must add up to the raw answer)."""
    if not stream:
        response = client.post("/ask", json=payload)
        assert response.status_code == 200, response.text
        return response.json()
    events = read_events(client, "/ask", {**payload, "stream": True})
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) <= {"token"}, events
    done = events[-1][1]
    assert (
        "".join(body["text"] for kind, body in events if kind == "token").strip()
        == done["raw_answer"]
    )
    return done


def blocks(prompt: str) -> list[tuple[dict[str, str], str]]:
    """The BEGININPUT blocks of a prompt: (metadata lines, text)."""
    found = re.findall(
        r"^BEGININPUT\nBEGINCONTEXT\n(.*?)ENDCONTEXT\n(.*?)\nENDINPUT$", prompt, re.M | re.S
    )
    return [
        (dict(line.split(": ", 1) for line in context.splitlines()), text)
        for context, text in found
    ]


def cite(match: str, *keys: str, trailer: str = "Source:") -> Callable[[dict[str, Any]], str]:
    """A model that answers and then cites, with ``keys`` of its metadata lines, the block it
    was sent whose text contains ``match``: what bagel was trained to write."""

    def reply(body: dict[str, Any]) -> str:
        shown = [metadata for metadata, text in blocks(prompt_of(body)) if match in text]
        assert len(shown) == 1, f"one block holds {match!r}: {prompt_of(body)}"
        lines = "\n".join(f"{key}: {shown[0][key]}" for key in keys)
        return f"The harbour lighthouse was built in 1874.\n{trailer}\n{lines}"

    return reply


def source_with(body: dict[str, Any], url: str) -> dict[str, Any]:
    (source,) = [s for s in body["sources"] if s["metadata"].get("url") == url]
    return source


# --- (a) a declined answer ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "stream"),
    [
        ("IRRELEVANT", False),
        ("The passage does not appear to provide an answer to the question.", True),
        ("I don't know.", False),
    ],
)
def test_a_trained_refusal_is_a_declined_answer(
    client: TestClient, fake_model: FakeModelServer, reply: str, stream: bool
) -> None:
    fake_model.enqueue(reply)
    body = ask(client, {"question": BUILT}, stream)
    assert body["answerable"] is False
    assert body["abstention_reason"] == MODEL_DECLINED
    assert body["citations"] == [] and body["unverified_citations"] == []
    assert body["raw_answer"] == reply and body["sources"]  # the model saw the context and declined
    assert len(fake_model.requests) == 1


def test_an_answer_that_mentions_a_refusal_word_is_not_declined(
    client: TestClient, fake_model: FakeModelServer
) -> None:
    """The counterpart: only a whole trained refusal declines, not the word inside an answer."""
    fake_model.enqueue("Its colour is irrelevant; the lighthouse was built in 1874.")
    body = ask(client, {"question": BUILT}, stream=False)
    assert body["answerable"] is True and body["abstention_reason"] is None


def test_a_declined_answer_through_the_openai_api(
    client: TestClient, fake_model: FakeModelServer
) -> None:
    fake_model.enqueue("IRRELEVANT")
    response = client.post(
        "/v1/chat/completions",
        json={"model": "rag", "messages": [{"role": "user", "content": BUILT}]},
    )
    assert response.status_code == 200, response.text
    message = response.json()["choices"][0]["message"]
    assert message["content"] == "IRRELEVANT"  # what the model wrote
    assert (
        message["rag"]["answerable"] is False
        and message["rag"]["abstention_reason"] == MODEL_DECLINED
    )
    assert message["rag"]["citations"] == []


# --- (b) citations -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("keys", "trailer", "stream"),
    [
        (("title", "url"), "Source:", False),
        (("url",), "Reference(s):", True),
        (("title",), "References:", False),
    ],
)
def test_a_cited_block_is_a_verified_citation(
    client: TestClient,
    fake_model: FakeModelServer,
    keys: tuple[str, ...],
    trailer: str,
    stream: bool,
) -> None:
    fake_model.enqueue(cite("built in 1874", *keys, trailer=trailer))
    body = ask(client, {"question": BUILT}, stream)
    assert (
        body["answer"] == "The harbour lighthouse was built in 1874."
    )  # the trailer is not the answer
    assert body["answerable"] is True and body["unverified_citations"] == []
    (citation,) = body["citations"]
    lighthouse = source_with(body, LIGHTHOUSE_URL)
    assert citation["metadata"]["url"] == LIGHTHOUSE_URL
    assert (
        citation["chunk_ids"] == lighthouse["chunk_ids"]
        and citation["chunk_id"] == lighthouse["chunk_id"]
    )
    assert citation["document_id"] == lighthouse["document_id"]
    expected = {"title": LIGHTHOUSE_TITLE, "url": LIGHTHOUSE_URL}
    assert citation["cited_lines"] == {key: expected[key] for key in keys}


def test_a_source_never_sent_is_unverified(client: TestClient, fake_model: FakeModelServer) -> None:
    """The orchard document is indexed, but with top_k 1 only the lighthouse is sent: citing the
    orchard (or a made-up guild yearbook) is not verified, whatever the index holds."""
    sent = cite("built in 1874", "url")

    def reply(body: dict[str, Any]) -> str:
        return (
            f"{sent(body)}\n\ntitle: {ORCHARD_TITLE}\nurl: {ORCHARD_URL}\n\n"
            "title: Lighthouse keepers' guild yearbook"
        )

    fake_model.enqueue(reply)
    body = ask(client, {"question": BUILT, "top_k": 1, "include_prompt": True}, stream=False)
    assert [s["metadata"]["url"] for s in body["sources"]] == [LIGHTHOUSE_URL]
    assert ORCHARD_URL not in body["prompt"]
    assert [c["metadata"]["url"] for c in body["citations"]] == [LIGHTHOUSE_URL]
    assert body["unverified_citations"] == [
        {"cited_lines": [["title", ORCHARD_TITLE], ["url", ORCHARD_URL]]},
        {"cited_lines": [["title", "Lighthouse keepers' guild yearbook"]]},
    ]


# --- (c) several questions ---------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_numbered_answers_are_split_per_question(
    client: TestClient, fake_model: FakeModelServer, stream: bool
) -> None:
    fake_model.enqueue("1. It was built in 1874.\n**3.** The tower is 32 metres tall.")
    questions = [BUILT, HARVEST, TALL]
    body = ask(client, {"questions": questions}, stream)
    assert body["answers"] == [
        {"question": BUILT, "answer": "It was built in 1874."},
        {"question": HARVEST, "answer": None},  # the model gave no answer 2: none is guessed
        {"question": TALL, "answer": "The tower is 32 metres tall."},
    ]
    prompt = prompt_of(fake_model.requests[0])
    assert f"1. {BUILT}\n2. {HARVEST}\n3. {TALL}\nAnswer each numbered question in order" in prompt
    urls = {s["metadata"]["url"] for s in body["sources"]}
    assert urls == {LIGHTHOUSE_URL, ORCHARD_URL}  # chunks were retrieved for each question


# --- (d) the model server failing --------------------------------------------------------------
def test_a_failing_model_server_is_a_503(client: TestClient, fake_model: FakeModelServer) -> None:
    fake_model.fail(503, times=2)  # the first answer and the client's one retry
    response = client.post("/ask", json={"question": BUILT})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["type"] == "llm_unavailable"
    assert response.headers["retry-after"].isdigit()
    assert len(fake_model.requests) == 2


def test_one_failure_is_retried(client: TestClient, fake_model: FakeModelServer) -> None:
    fake_model.fail(500)
    fake_model.enqueue("It was built in 1874.")
    body = ask(client, {"question": BUILT}, stream=False)
    assert body["answer"] == "It was built in 1874." and len(fake_model.requests) == 2


def test_a_stream_whose_model_fails_before_the_first_token_ends_with_an_error(
    client: TestClient, fake_model: FakeModelServer
) -> None:
    fake_model.fail(503, times=2)
    events = read_events(client, "/ask", {"question": BUILT, "stream": True})
    assert [kind for kind, _ in events] == ["error"]
    error = events[0][1]["error"]
    assert error["type"] == "llm_unavailable" and "503" in error["message"]


@pytest.mark.parametrize(
    ("how", "kind"), [("drop", "llm_unavailable"), ("error_event", "llm_error")]
)
def test_a_stream_broken_off_midway_ends_with_an_error(
    client: TestClient, fake_model: FakeModelServer, how: str, kind: str
) -> None:
    """The connection dropped (a crashed model server), or vLLM's own in-stream error chunk: the
    tokens sent so far arrive, then an ``error`` event, and no ``done``."""
    fake_model.break_off("The harbour lighthouse was", how=how)  # type: ignore[arg-type]
    events = read_events(client, "/ask", {"question": BUILT, "stream": True})
    kinds = [k for k, _ in events]
    assert kinds == ["token"] * (len(kinds) - 1) + ["error"], events
    assert (
        "".join(body["text"] for k, body in events if k == "token") == "The harbour lighthouse was"
    )
    assert events[-1][1]["error"]["type"] == kind


def test_a_response_broken_off_midway_is_a_503(
    client: TestClient, fake_model: FakeModelServer
) -> None:
    fake_model.break_off("The harbour lighthouse was built in 1874.")
    fake_model.break_off("The harbour lighthouse was built in 1874.")  # and the retry
    response = client.post("/ask", json={"question": BUILT})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["type"] == "llm_unavailable"
    assert len(fake_model.requests) == 2


def test_an_openai_stream_broken_off_midway_ends_with_an_error_chunk(
    client: TestClient, fake_model: FakeModelServer
) -> None:
    fake_model.break_off("The harbour lighthouse was")
    payload = {"model": "rag", "stream": True, "messages": [{"role": "user", "content": BUILT}]}
    with client.stream("POST", "/v1/chat/completions", json=payload) as response:
        assert response.status_code == 200
        data = [
            line.removeprefix("data: ")
            for line in response.iter_lines()
            if line.startswith("data: ")
        ]
    assert data[-1] == "[DONE]"
    error = json.loads(data[-2])["error"]
    assert error["code"] == "llm_unavailable"
    streamed = "".join(json.loads(d)["choices"][0]["delta"].get("content", "") for d in data[:-2])
    assert streamed == "The harbour lighthouse was"


# --- (e) what the model receives ---------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_the_model_receives_the_question_in_bagels_format(
    client: TestClient, fake_model: FakeModelServer, stream: bool
) -> None:
    fake_model.enqueue("It was built in 1874.")
    body = ask(client, {"question": BUILT, "include_prompt": True}, stream)
    (request,) = fake_model.requests
    assert fake_model.paths == ["/v1/chat/completions"]
    assert request["model"] == MODEL  # learned from GET /v1/models
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    prompt = prompt_of(request)
    assert prompt == body["prompt"]
    sent = blocks(prompt)
    assert len(sent) == len(body["sources"]) == prompt.count("BEGININPUT") > 0
    assert {metadata["url"] for metadata, _ in sent} == {
        s["metadata"]["url"] for s in body["sources"]
    }
    assert prompt.endswith(
        f"BEGININSTRUCTION\n{BUILT}\nDon't make up answers if you don't know. Cite your sources.\nENDINSTRUCTION"
    )
    assert {"BEGININPUT", "BEGININSTRUCTION"} <= set(request["stop"])
    # Streamed from the model either way: an answer wanted whole has its sentences embedded
    # for attribution while it is written (issue 16), and usage comes in the last chunk.
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    # Whole: vLLM sends 8 tokens a chunk (fewer to parse); streamed to the caller: one a chunk.
    assert request.get("stream_interval") == (None if stream else 8)


def test_completion_mode_sends_the_llama2_wrapped_prompt(
    open_service: OpenService, fake_model: FakeModelServer
) -> None:
    client = open_service(prompt_mode="completion")
    fake_model.enqueue(
        "It was built in 1874.</s>[INST] and more"
    )  # the stop sequences end the answer
    body = ask(client, {"question": BUILT, "include_prompt": True}, stream=False)
    assert fake_model.paths == ["/v1/completions"]
    prompt = fake_model.requests[0]["prompt"]
    assert prompt.startswith("[INST] <<SYS>>\n") and prompt.endswith(f"{body['prompt']} [/INST]")
    assert body["answer"] == "It was built in 1874."


def test_the_openai_api_reports_the_model_servers_usage(
    client: TestClient, fake_model: FakeModelServer
) -> None:
    fake_model.enqueue("It was built in 1874.")
    payload = {"model": "rag", "messages": [{"role": "user", "content": BUILT}],
               "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    with client.stream("POST", "/v1/chat/completions", json=payload) as response:
        data = [
            line.removeprefix("data: ")
            for line in response.iter_lines()
            if line.startswith("data: ")
        ]
    assert data[-1] == "[DONE]"
    usage = json.loads(data[-2])["usage"]
    request = fake_model.requests[0]
    prompt_tokens = len(tokens("\n".join(m["content"] for m in request["messages"])))
    completion_tokens = len(tokens("It was built in 1874."))
    assert usage == {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "total_tokens": prompt_tokens + completion_tokens}  # fmt: skip
