"""The HTTP API end to end: real embedder, faiss, SQLite and a real vLLM server on the tiny model.

On SQLite the app starts its own embedded vLLM (the code path of `make run`), which the
lifecycle tests kill and watch come back; on PostgreSQL it uses the session's shared model
server (tests/model_server.py). Generation tests that never touch the database run on
SQLite only; the dead-server tests point another app at a closed port.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from indexer.pipeline import Indexer
from rag.access.api_keys import ApiKeyStore
from rag.answering.attribution import sentences
from rag.collections.store import CollectionStore
from rag.embedding.embedder import SentenceTransformersEmbedder
from rag.generation.vllm_server import free_port
from rag.text.chunking import TokenChunker
from tests.conftest import BACKENDS, CORPUS_DIR, fresh_database, make_settings
from tests.sse import read_events

pytestmark = [pytest.mark.integration, pytest.mark.llm]

QUESTIONS = {
    "How high were the lava fountains when Kilauea erupted in 2023?": "volcano.md",
    "What does the duration of the honeybee waggle run encode?": "honeybees.md",
    "How deep below the surface is the ice found by the rover?": "rover.html",
    "How often should a sourdough starter be fed?": "bakery.html",
    "How thick is the ice of the Aletsch Glacier at Konkordiaplatz?": "glacier.txt",
    "En quelle année le café Procope a-t-il été fondé ?": "cafe_latin1.txt",
    "How much does the Trail X bicycle frame weigh?": "products.jsonl#bike-x",
    "When was the Gutenberg Bible printed?": "printing.md",
}


# The backend whose app starts its own embedded vLLM. Tests marked `embedded_only` run on it
# alone: the embedded server's lifecycle, and generation that reads nothing from the database
# (summaries of posted text, raw completions), which would only repeat itself on PostgreSQL.
EMBEDDED_BACKEND = "sqlite"
embedded_only = pytest.mark.parametrize("client", [EMBEDDED_BACKEND], indirect=True)


@pytest.fixture(scope="module", params=BACKENDS)
def client(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    embedder: SentenceTransformersEmbedder,
) -> Iterator[TestClient]:
    """The service on each database in turn: on SQLite with its own embedded vLLM, as `make run`
    starts it; on PostgreSQL with the shared model server (one vLLM start less)."""
    folder = tmp_path_factory.mktemp(f"api-{request.param}")
    if request.param == EMBEDDED_BACKEND:
        llm: dict[str, object] = {"embedded_port": free_port()}
    else:
        llm = request.getfixturevalue("model_server").llm_settings()
    with fresh_database(request.param, folder) as database_url:
        settings = make_settings(folder / "data", database_url, llm=llm)
        store = CollectionStore(settings, embedder)
        report = Indexer(
            store,
            TokenChunker(embedder, settings.chunking.max_tokens, settings.chunking.overlap_tokens),
        ).index_paths([CORPUS_DIR])
        assert report.added and not report.failed
        admin_key = ApiKeyStore(store.sessions).create("tests", [], admin=True).key
        store.close()
        with TestClient(
            create_app(settings), headers={"Authorization": f"Bearer {admin_key}"}
        ) as test_client:
            test_client.corpus_documents = report.added  # type: ignore[attr-defined]
            yield test_client


# The corpus the fixture indexed is read by every test and changed by none. A test that adds
# or deletes documents does it in a collection of its own (`own_collection`), so no test's
# expectation depends on which tests ran before it.
CORPUS_COLLECTION = "default"


def own_collection(purpose: str) -> str:
    return f"{purpose}-{uuid.uuid4().hex[:8]}"


def blocks_of(prompt: str) -> list[str]:
    return re.findall(
        r"^BEGININPUT\nBEGINCONTEXT\n(?:[^\n]+: [^\n]*\n)*ENDCONTEXT\n.*?\nENDINPUT$",
        prompt,
        re.M | re.S,
    )


def test_health_reports_every_component_ready(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["index"]["ok"] and body["llm"]["ok"]


@pytest.mark.parametrize(("question", "expected_source"), QUESTIONS.items())
def test_ask_returns_the_document_and_a_well_formed_prompt(
    client: TestClient, question: str, expected_source: str
) -> None:
    response = client.post("/ask", json={"question": question, "top_k": 4, "include_prompt": True})
    assert response.status_code == 200, response.text
    body = response.json()
    sources = body["sources"]
    assert any(s["metadata"]["source"].endswith(expected_source) for s in sources), [
        s["metadata"]["source"] for s in sources
    ]

    prompt = body["prompt"]
    assert len(blocks_of(prompt)) == len(sources) == prompt.count("BEGININPUT\n")
    assert prompt.count("BEGININSTRUCTION") == 1 and prompt.count("ENDINSTRUCTION") == 1
    instruction = prompt.split("BEGININSTRUCTION\n", 1)[1]
    assert instruction.startswith(question) and instruction.endswith("ENDINSTRUCTION")
    for source, block in zip(sources, blocks_of(prompt)):
        assert f"source: {source['metadata']['source']}" in block
        assert source["text"].strip() in block

    source_chunks = {s["chunk_id"] for s in sources}
    assert {c["chunk_id"] for c in body["citations"]} <= source_chunks
    assert {s["chunk_id"] for s in body["supporting_sentences"]} <= source_chunks
    assert len(body["supporting_sentences"]) == (
        len(sentences(body["answer"])) if body["answer"] else 0
    )
    assert body["raw_answer"].startswith(body["answer"]) or not body["answer"]
    assert set(body["timings_ms"]) >= {"retrieve_ms", "generate_ms", "total_ms"}


def test_ask_metadata_of_sources(client: TestClient) -> None:
    body = client.post(
        "/ask", json={"question": "Kilauea sulfur dioxide emissions", "top_k": 1}
    ).json()
    [source] = body["sources"]
    assert source["metadata"]["title"] == "Kilauea eruption report"
    assert source["metadata"]["url"] == "https://volcano.example.org/kilauea-2023"
    assert source["metadata"]["date"] == "2023-09-12"
    assert body["prompt"] is None  # only on request


@embedded_only
def test_summarize_returns_a_summary(client: TestClient) -> None:
    text = (CORPUS_DIR / "honeybees.md").read_text()
    response = client.post("/summarize", json={"text": text, "words": 40})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"].strip() and body["rounds"] == 1


@embedded_only
def test_summarize_text_longer_than_the_context(client: TestClient) -> None:
    paragraph = (CORPUS_DIR / "printing.md").read_text()
    text = "\n\n".join([paragraph] * 12)  # about 7,000 model tokens, the context holds 4,096
    response = client.post("/summarize", json={"text": text, "words": 30})
    assert response.status_code == 200, response.text
    assert response.json()["rounds"] >= 2 and response.json()["summary"].strip()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "question"),
        ({"question": 42}, "question"),
        ({}, "question"),
        ({"question": "ok", "top_k": 0}, "top_k"),
        ({"question": "ok", "top_k": "many"}, "top_k"),
        ({"question": "ok", "unknown": 1}, "unknown"),
    ],
)
def test_invalid_ask_requests_get_422_with_a_message(
    client: TestClient, payload: dict[str, object], field: str
) -> None:
    response = client.post("/ask", json=payload)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_request" and field in error["message"]


def test_limits_and_malformed_json(client: TestClient) -> None:
    assert client.post("/ask", json={"question": "ok", "top_k": 500}).status_code == 422
    assert client.post("/ask", json={"question": "x" * 5000}).status_code == 422
    bad = client.post("/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422 and "JSON" in bad.json()["error"]["message"]
    assert client.post("/summarize", json={"text": ""}).status_code == 422
    assert client.post("/summarize", json={"text": "x", "words": 0}).status_code == 422


def test_documents_listing_and_lookup(client: TestClient) -> None:
    listing = client.get(
        "/documents", params={"limit": 100, "collection": CORPUS_COLLECTION}
    ).json()
    assert listing["total"] == len(listing["documents"]) == client.corpus_documents  # type: ignore[attr-defined]
    assert {d["collection"] for d in listing["documents"]} == {CORPUS_COLLECTION}
    volcano = next(d for d in listing["documents"] if d["source"].endswith("volcano.md"))
    assert (
        volcano["metadata"]["author"] == "Hawaiian Volcano Observatory"
        and volcano["chunk_count"] >= 1
    )
    assert client.get(f"/documents/{volcano['id']}").json()["source"] == volcano["source"]
    missing = client.get("/documents/999999")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


def test_openapi_documents_the_endpoints_and_the_error_shape(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/ask", "/summarize", "/health", "/documents", "/documents/{document_id}"} <= set(
        schema["paths"]
    )
    ask_responses = schema["paths"]["/ask"]["post"]["responses"]
    assert ask_responses["503"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorResponse"
    )


def test_dead_model_server_gives_a_fast_503(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        llm={"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "none", "max_retries": 0},
        api={"auth": "off"},
    )
    store_dir_corpus = CORPUS_DIR / "glacier.txt"
    with TestClient(create_app(settings)) as dead:
        store = dead.app.state.container.catalog.writable_store("default")  # type: ignore[attr-defined]
        Indexer(store, TokenChunker(store.embedder, 200, 32)).index_paths([store_dir_corpus])
        store.close()
        started = time.monotonic()
        response = dead.post("/ask", json={"question": "How long is the Aletsch glacier?"})
        assert time.monotonic() - started < 10
        assert response.status_code == 503
        assert response.headers["retry-after"].isdigit()
        assert response.json()["error"]["type"] == "llm_unavailable"
        health = dead.get("/health")
        assert health.status_code == 503 and health.json()["llm"]["ok"] is False


def test_nothing_indexed_means_no_model_call_and_not_answerable(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        llm={"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "none", "max_retries": 0},
        api={"auth": "off"},
    )
    with TestClient(create_app(settings)) as empty:
        body = empty.post("/ask", json={"question": "anything?"}).json()
        assert (
            body["answerable"] is False
            and body["sources"] == []
            and "no indexed chunk" in body["abstention_reason"]
        )


def test_first_start_prints_an_admin_key_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path / "data",
        llm={"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "none", "max_retries": 0},
    )
    with (
        caplog.at_level("WARNING", logger="api.container"),
        TestClient(create_app(settings)) as first,
    ):
        printed = re.search(r"\b(rag_[A-Za-z0-9_\-]{40,})\b", caplog.text)
        assert printed, caplog.text
        assert first.get("/documents").status_code == 401  # keys are required from the start
        assert (
            first.get(
                "/documents", headers={"Authorization": f"Bearer {printed.group(1)}"}
            ).status_code
            == 200
        )
        assert (
            first.get("/health").status_code == 503
        )  # no key needed (the model server is down here)
    caplog.clear()
    with (
        caplog.at_level("WARNING", logger="api.container"),
        TestClient(create_app(settings)) as second,
    ):
        assert "rag_" not in caplog.text  # a key exists now: none is made or shown again
        assert [k.name for k in second.app.state.container.keys.list()] == ["first-admin"]  # type: ignore[attr-defined]


def test_ask_with_metadata_filters_and_mode(client: TestClient) -> None:
    body = client.post(
        "/ask",
        json={
            "question": "What did the rover find?", "top_k": 10, "mode": "dense",
            "filters": {"date": {"gte": "2024-01-01"}}, "collections": [CORPUS_COLLECTION],
        },
    ).json()  # fmt: skip
    # Exactly the four documents of the corpus dated 2024 or later (one chunk each), though k is 10.
    assert len(body["sources"]) == 4
    assert all(s["metadata"]["date"] >= "2024-01-01" for s in body["sources"])
    bad = client.post("/ask", json={"question": "q", "filters": {"date": {"after": "2024"}}})
    assert bad.status_code == 422 and "unknown operator" in bad.json()["error"]["message"]
    assert client.post("/ask", json={"question": "q", "mode": "magic"}).status_code == 422


def test_documents_indexed_while_serving_are_answered_without_restart(
    client: TestClient, embedder: SentenceTransformersEmbedder, tmp_path: Path
) -> None:
    settings = client.app.state.container.settings  # type: ignore[attr-defined]
    collection = own_collection("census")
    first, note = tmp_path / "lions.md", tmp_path / "zebra.md"
    first.write_text(
        "---\ntitle: Lion census\n---\nThe 2026 lion census counted 61 lions in the reserve.\n"
    )
    note.write_text(
        "---\ntitle: Zebra census\n---\nThe 2026 zebra census counted 4,812 Grevy's zebras in the reserve.\n"
    )
    writer = CollectionStore(
        settings, embedder, collection=collection
    )  # another process, as `rag index` would be
    indexer = Indexer(
        writer,
        TokenChunker(embedder, settings.chunking.max_tokens, settings.chunking.overlap_tokens),
    )
    question = {
        "question": "How many Grevy's zebras did the census count?",
        "top_k": 2,
        "collections": [collection],
    }
    try:
        assert indexer.index_paths([first]).added == 1
        # The service opens the collection's indexes now: one source, no zebra yet.
        before = client.post("/ask", json=question).json()
        assert all(s["metadata"]["title"] == "Lion census" for s in before["sources"])
        [served] = client.app.state.container.catalog.stores([collection])  # type: ignore[attr-defined]
        chunks_before = served.vectors.size
        assert indexer.index_paths([note]).added == 1
        # The service's cache follows SQL's change log (RAG_INDEXING__FOLLOW_INTERVAL_S, 1 s).
        deadline = time.monotonic() + 10
        while served.vectors.size == chunks_before and time.monotonic() < deadline:
            time.sleep(0.2)
        body = client.post("/ask", json=question).json()
        assert body["sources"][0]["metadata"]["title"] == "Zebra census"
    finally:
        writer.close()


def test_ask_streams_tokens_then_the_full_answer(client: TestClient) -> None:
    # The tiny model answers this one (to the sourdough question it writes nothing: a stream of
    # no tokens, which compared equal to its empty answer and hid that nothing was streamed).
    question = "How thick is the Aletsch glacier ice?"
    events = read_events(
        client, "/ask", {"question": question, "top_k": 2, "stream": True, "include_prompt": True}
    )
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) <= {"token"}
    done = events[-1][1]
    tokens = [str(body["text"]) for kind, body in events if kind == "token"]
    # The answer came piece by piece as the model wrote it, not in one event at the end...
    assert len([token for token in tokens if token.strip()]) > 1, (
        tokens,
        {k: done.get(k) for k in ("raw_answer", "abstention_reason", "timings_ms")},
    )
    # ...and the pieces are exactly the answer the `done` event then reports and attributes.
    streamed = "".join(tokens)
    assert streamed.strip() and streamed.strip() == done["raw_answer"]
    answer = str(done["answer"])
    assert done["raw_answer"].startswith(answer) or not answer  # type: ignore[union-attr]
    source_chunks = {s["chunk_id"] for s in done["sources"]}  # type: ignore[union-attr]
    assert {c["chunk_id"] for c in done["citations"]} <= source_chunks  # type: ignore[union-attr]
    assert {s["chunk_id"] for s in done["supporting_sentences"]} <= source_chunks  # type: ignore[union-attr]
    assert len(done["supporting_sentences"]) == (len(sentences(answer)) if answer else 0)  # type: ignore[arg-type]
    assert any(str(s["metadata"]["source"]).endswith("glacier.txt") for s in done["sources"])  # type: ignore[union-attr]
    assert str(done["prompt"]).count("BEGININPUT\n") == len(done["sources"])  # type: ignore[arg-type]
    assert set(done["timings_ms"]) >= {"retrieve_ms", "generate_ms", "total_ms"}  # type: ignore[arg-type]


@embedded_only
def test_summarize_streams(client: TestClient) -> None:
    events = read_events(
        client,
        "/summarize",
        {"text": (CORPUS_DIR / "glacier.txt").read_text(), "words": 25, "stream": True},
    )
    assert events[-1][0] == "done" and events[-1][1]["summary"]
    assert (
        "".join(str(b["text"]) for k, b in events if k == "token").strip()
        == events[-1][1]["summary"]
    )


def test_off_topic_question_abstains_without_calling_the_model(client: TestClient) -> None:
    body = client.post(
        "/ask", json={"question": "Which football club won the 1999 Champions League final?"}
    ).json()
    assert body["answerable"] is False and body["sources"] == [] and body["raw_answer"] == ""
    assert (
        "nothing relevant enough" in body["abstention_reason"]
        and "generate_ms" not in body["timings_ms"]
    )


def test_several_questions_in_one_request(client: TestClient) -> None:
    questions = [
        "How thick is the Aletsch glacier ice at Konkordiaplatz?",
        "Who decoded the honeybee waggle dance?",
    ]
    response = client.post(
        "/ask", json={"questions": questions, "top_k": 2, "include_prompt": True}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    prompt = body["prompt"]
    assert (
        prompt.count("BEGININSTRUCTION") == 1 and f"1. {questions[0]}\n2. {questions[1]}" in prompt
    )
    names = {s["metadata"]["source"].rsplit("/", 1)[-1] for s in body["sources"]}
    assert {"glacier.txt", "honeybees.md"} <= names  # chunks were retrieved for each question
    assert [a["question"] for a in body["answers"]] == questions
    both = client.post("/ask", json={"question": "q", "questions": ["q"]})
    assert both.status_code == 422 and "either question" in both.json()["error"]["message"]


def test_answer_evaluation_through_the_pipeline(client: TestClient) -> None:
    from evaluation.answers import SquadQuestion, evaluate_answers

    glacier = str((CORPUS_DIR / "glacier.txt").resolve())
    questions = [
        SquadQuestion(
            "How thick is the Aletsch glacier ice at Konkordiaplatz?",
            glacier,
            ["900 metres", "up to 900 metres"],
        ),
        SquadQuestion("Which football club won the 1999 Champions League final?", "none", []),
    ]
    answers = client.app.state.container.answers  # type: ignore[attr-defined]
    metrics = client.portal.call(evaluate_answers, answers, questions, 3)  # type: ignore[union-attr]
    assert metrics["questions"] == 2 and metrics["answerable"] == 1
    assert metrics["source_recall"] == 1.0  # the glacier file is among the sources
    assert metrics["abstention_accuracy_unanswerable"] == 1.0  # the off-topic question abstains
    assert 0.0 <= metrics["f1"] <= 1.0 and 0.0 <= metrics["citation_precision"] <= 1.0


def test_summarize_an_indexed_document(client: TestClient) -> None:
    listing = client.get(
        "/documents", params={"limit": 100, "collection": CORPUS_COLLECTION}
    ).json()
    printing = next(d for d in listing["documents"] if d["source"].endswith("printing.md"))
    assert printing["chunk_count"] > 1  # rebuilt from several overlapping chunks
    with client.app.state.container.catalog.session() as repo:  # type: ignore[attr-defined]
        rebuilt = repo.document_text(printing["id"])
    original = (CORPUS_DIR / "printing.md").read_text().split("---\n", 2)[2]
    assert " ".join(rebuilt.split()) == " ".join(original.split())
    response = client.post("/summarize", json={"document_id": printing["id"], "words": 30})
    assert response.status_code == 200 and response.json()["summary"]
    assert client.post("/summarize", json={"document_id": 999999}).status_code == 404
    both = client.post("/summarize", json={"text": "x", "document_id": printing["id"]})
    assert (
        both.status_code == 422 and "either text or document_id" in both.json()["error"]["message"]
    )


@embedded_only
def test_raw_completion_mode_generates_and_streams(client: TestClient) -> None:
    from rag.generation.llm import OpenAICompatibleLLM

    base_url = client.app.state.container.llm.base_url  # type: ignore[attr-defined]

    async def run() -> tuple[int, int, str, str]:
        llm = OpenAICompatibleLLM(base_url, None, mode="completion")
        generation = await llm.generate("What colour is the sky?", "You are helpful.", 16, 0.0)
        streamed = "".join(
            [
                token
                async for token in llm.stream(
                    "What colour is the sky?", "You are helpful.", 16, 0.0
                )
            ]
        )
        await llm.close()
        return generation.prompt_tokens, generation.completion_tokens, generation.text, streamed

    prompt_tokens, completion_tokens, generated, streamed = client.portal.call(run)  # type: ignore[union-attr]
    assert prompt_tokens > 10 and 0 < completion_tokens <= 16  # the [INST] wrapper was sent
    # Greedy decoding of one prompt: the stream carries the same words as the plain answer.
    assert streamed.strip() and streamed.split()[:3] == generated.split()[:3]


def wait_for_job(client: TestClient, job_id: str, timeout_s: float = 120.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}")
        assert job.status_code == 200, job.text
        if job.json()["status"] in ("succeeded", "failed"):
            return job.json()  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def upload_text(client: TestClient, text: str, collection: str, **fields: str) -> dict[str, object]:
    response = client.post("/documents", data={"text": text, "collection": collection, **fields})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/jobs/{response.json()['id']}"
    return wait_for_job(client, response.json()["id"])


def test_upload_ask_and_delete_over_http(client: TestClient) -> None:
    uploads = own_collection("uploads")
    job = upload_text(
        client,
        "The Lake Wobegon ferry crosses the lake in exactly 47 minutes and carries 212 passengers.",
        uploads,
        metadata=json.dumps({"title": "Ferry timetable", "url": "https://example.org/ferry"}),
        source="ferry-note",
    )
    assert (
        job["status"] == "succeeded"
        and job["report"]["added"] == 1
        and job["report"]["chunks_embedded"] == 1
    )  # type: ignore[index]
    file_job = client.post(
        "/documents",
        files={
            "file": (
                "owls.md",
                b"---\ntitle: Owl survey\n---\nThe barn owl survey counted 93 nesting pairs.\n",
                "text/markdown",
            )
        },
        data={"collection": uploads, "metadata": json.dumps({"author": "R. Finch"})},
    )
    assert wait_for_job(client, file_job.json()["id"])["status"] == "succeeded"
    broken = client.post(
        "/documents",
        files={"file": ("broken.pdf", b"%PDF-1.4 not really", "application/pdf")},
        data={"collection": uploads},
    )
    failed = wait_for_job(client, broken.json()["id"])
    assert failed["status"] == "failed" and "broken.pdf" in str(failed["error"])

    listing = client.get("/documents", params={"collection": uploads}).json()
    by_source = {d["source"]: d for d in listing["documents"]}
    assert set(by_source) == {"ferry-note", "owls.md"} and listing["total"] == 2
    assert by_source["owls.md"]["metadata"]["author"] == "R. Finch"
    assert by_source["owls.md"]["metadata"]["title"] == "Owl survey"
    assert by_source["owls.md"]["collection"] == uploads

    body = client.post(
        "/ask",
        json={
            "question": "How long does the ferry take to cross the lake?",
            "collections": [uploads],
            "top_k": 2,
        },
    ).json()
    assert body["sources"][0]["metadata"]["title"] == "Ferry timetable"
    assert {s["document_id"] for s in body["sources"]} <= {d["id"] for d in listing["documents"]}

    # Re-sending the same source unchanged embeds nothing.
    again = upload_text(
        client,
        "The Lake Wobegon ferry crosses the lake in exactly 47 minutes and carries 212 passengers.",
        uploads,
        metadata=json.dumps({"title": "Ferry timetable", "url": "https://example.org/ferry"}),
        source="ferry-note",
    )
    assert again["report"]["unchanged"] == 1 and again["report"]["chunks_embedded"] == 0  # type: ignore[index]

    ferry_id = by_source["ferry-note"]["id"]
    assert client.delete(f"/documents/{ferry_id}").status_code == 204
    assert client.get(f"/documents/{ferry_id}").status_code == 404
    assert client.delete(f"/documents/{ferry_id}").status_code == 404
    after = client.post(
        "/ask",
        json={
            "question": "How long does the ferry take to cross the lake?",
            "collections": [uploads],
            "top_k": 2,
        },
    ).json()
    assert all(s["document_id"] != ferry_id for s in after["sources"])


def test_upload_requests_are_validated(client: TestClient) -> None:
    neither = client.post("/documents", data={"collection": "uploads"})
    assert (
        neither.status_code == 422
        and "either a file or a text" in neither.json()["error"]["message"]
    )
    bad_meta = client.post("/documents", data={"text": "hello", "metadata": "[1, 2]"})
    assert bad_meta.status_code == 422 and "JSON object" in bad_meta.json()["error"]["message"]
    bad_type = client.post(
        "/documents", files={"file": ("tool.exe", b"MZ", "application/octet-stream")}
    )
    assert (
        bad_type.status_code == 422
        and "unsupported file type" in bad_type.json()["error"]["message"]
    )
    bad_name = client.post("/documents", data={"text": "hello", "collection": "../etc"})
    assert bad_name.status_code == 422
    assert client.get("/jobs/not-a-job").status_code == 404


def test_api_keys_keep_collections_apart(client: TestClient) -> None:
    keys = client.app.state.container.keys  # type: ignore[attr-defined]
    team_a, team_b, team_zz = (
        own_collection("team-a"),
        own_collection("team-b"),
        own_collection("team-zz"),
    )
    secret = upload_text(
        client, "Project Nightjar's launch code word is TANGERINE-77.", team_b, source="nightjar"
    )
    assert secret["status"] == "succeeded"
    upload_text(client, "Team A's cafeteria serves lentil soup on Tuesdays.", team_a, source="menu")
    key_a = keys.create("team a", [team_a]).key
    as_a = {"Authorization": f"Bearer {key_a}"}

    def ask_a(**payload: object) -> dict[str, object]:
        response = client.post("/ask", json={"top_k": 5, **payload}, headers=as_a)
        return {"status": response.status_code, **response.json()}

    # Without `collections` a key searches only its own: the secret never comes back.
    own = ask_a(question="What is Project Nightjar's launch code word?")
    assert own["status"] == 200
    assert all("TANGERINE" not in s["text"] for s in own["sources"])  # type: ignore[attr-defined]
    # A collection it may not see answers exactly like one that does not exist.
    hidden = ask_a(question="code word?", collections=[team_b])
    missing = ask_a(question="code word?", collections=[team_zz])
    assert hidden["status"] == missing["status"] == 404
    assert hidden["error"]["message"].replace(team_b, "X") == missing["error"]["message"].replace(
        team_zz, "X"
    )  # type: ignore[index]

    documents = client.get("/documents", headers=as_a).json()["documents"]
    assert {d["collection"] for d in documents} == {team_a}
    nightjar_id = next(
        d["id"] for d in client.get("/documents", params={"collection": team_b}).json()["documents"]
    )
    for method, path in [
        ("GET", f"/documents/{nightjar_id}"),
        ("DELETE", f"/documents/{nightjar_id}"),
    ]:
        seen = client.request(method, path, headers=as_a)
        absent = client.request(method, "/documents/987654", headers=as_a)
        assert seen.status_code == absent.status_code == 404
        assert seen.json()["error"]["message"].replace(str(nightjar_id), "N") == absent.json()[
            "error"
        ]["message"].replace("987654", "N")
    assert client.get(f"/jobs/{secret['id']}", headers=as_a).status_code == 404
    assert (
        client.post("/summarize", json={"document_id": nightjar_id}, headers=as_a).status_code
        == 404
    )
    assert client.get("/documents", params={"collection": team_b}, headers=as_a).status_code == 404
    assert [c["name"] for c in client.get("/collections", headers=as_a).json()["collections"]] == [
        team_a
    ]
    assert (
        client.post(
            "/documents", data={"text": "x", "collection": team_b}, headers=as_a
        ).status_code
        == 404
    )
    assert client.get("/metrics", headers=as_a).status_code == 403

    # No key, a wrong key and a revoked key get 401; /health needs none.
    assert client.get("/documents", headers={"Authorization": ""}).status_code == 401
    wrong = client.get("/documents", headers={"Authorization": "Bearer rag_wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "unauthorized"
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert keys.revoke(key_a[:12]) is not None
    assert client.get("/documents", headers=as_a).status_code == 401
    assert client.get("/health", headers={"Authorization": ""}).status_code == 200
    stored = [k.__dict__ for k in keys.list()]
    assert key_a not in json.dumps(stored)  # only the hash and a prefix are kept


def test_metrics_and_request_ids(client: TestClient) -> None:
    asked = client.post(
        "/ask",
        json={"question": "How thick is the Aletsch glacier ice?", "top_k": 2},
        headers={"X-Request-ID": "trace-123"},
    )
    assert asked.status_code == 200 and asked.headers["x-request-id"] == "trace-123"
    assert len(client.get("/documents").headers["x-request-id"]) == 32
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    for stage in ("embed", "search", "generate"):
        assert re.search(rf'rag_stage_duration_seconds_count{{stage="{stage}"}} [1-9]', text), stage
    assert re.search(r'rag_llm_tokens_total{kind="prompt"} [1-9]', text)
    assert re.search(r'rag_llm_tokens_total{kind="completion"} [1-9]', text)
    assert re.search(r'rag_index_vectors{collection="default"} [1-9]', text)
    assert re.search(
        r'rag_http_requests_total{method="POST",route="/ask",status="200"} [1-9]', text
    )


def test_upload_size_and_request_time_limits(tmp_path: Path) -> None:
    import socket

    hanging = (
        socket.socket()
    )  # accepts connections (backlog) and never answers: a stuck model server
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(8)
    port = hanging.getsockname()[1]
    settings = make_settings(
        tmp_path / "data",
        llm={"base_url": f"http://127.0.0.1:{port}/v1", "model": "stuck", "max_retries": 0},
        api={"auth": "off", "max_upload_mb": 0.001, "request_timeout_s": 1.5},
    )
    try:
        with TestClient(create_app(settings)) as limited:
            too_big = limited.post(
                "/documents", files={"file": ("big.txt", b"x" * 5000, "text/plain")}
            )
            assert (
                too_big.status_code == 413
                and too_big.json()["error"]["type"] == "payload_too_large"
            )
            started = time.monotonic()
            stuck = limited.post(
                "/summarize", json={"text": "Summarize this sentence about nothing in particular."}
            )
            assert stuck.status_code == 504 and stuck.json()["error"]["type"] == "timeout"
            assert time.monotonic() - started < 10
    finally:
        hanging.close()


def test_adjacent_chunks_are_sent_as_one_block(client: TestClient) -> None:
    body = client.post(
        "/ask",
        json={
            "question": "Gutenberg Bible movable type printing history",
            "top_k": 12,
            "include_prompt": True,
            "mode": "dense",
        },
    ).json()
    merged = [s for s in body["sources"] if len(s["chunk_ids"]) > 1]
    assert merged, [s["chunk_ids"] for s in body["sources"]]
    assert (
        len(blocks_of(body["prompt"]))
        == len(body["sources"])
        == body["prompt"].count("BEGININPUT\n")
    )
    for source in merged:
        assert source["chunk_id"] == source["chunk_ids"][0]
        assert source["text"].strip() in body["prompt"]
    all_ids = [i for s in body["sources"] for i in s["chunk_ids"]] + body["omitted_chunk_ids"]
    assert (
        len(all_ids) == len(set(all_ids)) >= 10
    )  # each retrieved chunk sent once, or listed as left out


def test_out_of_range_ids_and_nul_characters_are_refused_not_500(client: TestClient) -> None:
    huge = 2**63
    assert client.get("/documents", params={"offset": huge}).status_code == 422
    assert client.get(f"/documents/{huge}").status_code == 422
    assert client.delete(f"/documents/{huge}").status_code == 422
    assert client.post("/summarize", json={"document_id": huge}).status_code == 422
    assert (
        client.post("/ask", json={"question": "q", "filters": {"year": {"gt": 10**30}}}).status_code
        == 200
    )
    nul_filter = client.post("/ask", json={"question": "q", "filters": {"author": "a\u0000b"}})
    assert nul_filter.status_code == 422 and "NUL" in nul_filter.json()["error"]["message"]
    for fields in (
        {"text": "x", "source": "a\x00b"},
        {"text": "a\x00b"},
        {"text": "x", "metadata": '{"t": "a\\u0000b"}'},
    ):
        refused = client.post("/documents", data=fields)
        assert refused.status_code == 422 and "NUL" in refused.json()["error"]["message"], fields


@embedded_only
def test_service_recovers_when_the_model_server_returns(client: TestClient) -> None:
    """It kills the SQLite app's embedded vLLM and waits for the watchdog to bring it back; it
    ends only once the service answers again, so the tests after it, in any order, find it up."""
    container = client.app.state.container  # type: ignore[attr-defined]
    process = container.embedded._process
    process.kill()
    process.wait()
    started = time.monotonic()
    down = client.post(
        "/ask", json={"question": "How thick is the Aletsch glacier ice?", "top_k": 2}
    )
    assert down.status_code == 503 and time.monotonic() - started < 10
    assert down.headers["retry-after"].isdigit()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        back = client.post(
            "/ask", json={"question": "How thick is the Aletsch glacier ice?", "top_k": 2}
        )
        if back.status_code == 200:
            break
        assert back.status_code == 503
        time.sleep(2)
    assert back.status_code == 200 and back.json()["sources"], (
        "the service did not recover by itself"
    )


def test_start_up_warmed_what_the_first_question_would_pay(client: TestClient) -> None:
    """Issue 16: indexes open, encoder compiled, search and filter paths run, model server
    asked, all before the first request (the time it saves is in the README's benchmark)."""
    container = client.app.state.container  # type: ignore[attr-defined]
    report = container.warm_up_report
    assert report is not None and report.llm_ready
    assert report.collection_names == ("default",)
    assert {"encoder", "indexes", "search", "filter", "tokenizer", "llm", "total"} <= set(
        report.stages_ms
    )
    assert (
        container.answers.llm._context_length is not None
    )  # asked at start-up, not by the first /ask
    store = container.catalog.stores(["default"])[0]
    assert store.vectors.size and store.keywords.size


def test_each_answer_reports_its_stages_and_reuses_passage_sentences(client: TestClient) -> None:
    question = {
        "question": "How high were the lava fountains when Kilauea erupted in 2023?",
        "top_k": 2,
        "filters": {"source": {"ne": ""}},
    }
    first = client.post("/ask", json=question)
    assert first.status_code == 200, first.text
    assert first.json()["supporting_sentences"], first.json()[
        "answer"
    ]  # an answer with sentences to attribute
    timings = first.json()["timings_ms"]
    assert {
        "embed_ms",
        "filter_ms",
        "dense_search_ms",
        "keyword_search_ms",
        "search_ms",
        "prompt_ms",
        "attribute_ms",
    } <= set(timings)
    cache = client.app.state.container.answers.sentence_cache  # type: ignore[attr-defined]
    hits = cache.hits
    again = client.post("/ask", json=question).json()
    assert cache.hits >= hits + len(again["sources"])  # the same passages: nothing re-embedded
    assert again["supporting_sentences"] == first.json()["supporting_sentences"]
    text = client.get("/metrics").text
    for stage in ("filter", "dense_search", "keyword_search", "prompt", "attribute"):
        assert re.search(rf'rag_stage_duration_seconds_count{{stage="{stage}"}} [1-9]', text), stage
