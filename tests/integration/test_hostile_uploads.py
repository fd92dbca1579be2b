"""Issue 18 through the real HTTP upload and job path: hostile files fail their own job with a
clear reason, quickly, without raising the service's memory, and nothing else is lost.

The app runs with the real embedder, faiss and each database; the model server is a closed
port (ingestion never calls it).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from rag.generation.vllm_server import free_port
from rag.storage import database
from rag.storage.models import IngestionJob
from tests.conftest import BACKENDS, fresh_database, make_settings
from tests.hostile_files import empty_paragraphs_bomb, nested_json, slow_docx, yaml_alias_bomb

pytestmark = [pytest.mark.integration]

READER_TIMEOUT_S = 2.0
MAX_DOCUMENT_CHARS = 200_000


@pytest.fixture(scope="module", params=BACKENDS)
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp(f"hostile-{request.param}")
    with fresh_database(request.param, folder) as database_url:
        settings = make_settings(
            folder / "data",
            database_url,
            llm={
                "base_url": f"http://127.0.0.1:{free_port()}/v1",
                "model": "none",
                "max_retries": 0,
            },
            api={"auth": "off", "ingestion_workers": 2},
            indexing={
                "reader_timeout_s": READER_TIMEOUT_S,
                "max_document_chars": MAX_DOCUMENT_CHARS,
            },
        )
        with TestClient(create_app(settings)) as test_client:
            yield test_client


def wait_for_job(client: TestClient, job_id: str, timeout_s: float = 120.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def upload(client: TestClient, name: str, content: bytes, collection: str, **fields: str) -> str:
    response = client.post(
        "/documents", files={"file": (name, content)}, data={"collection": collection, **fields}
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]  # type: ignore[no-any-return]


def sources(client: TestClient, collection: str) -> dict[str, dict[str, object]]:
    listing = client.get("/documents", params={"collection": collection, "limit": 500}).json()
    return {d["source"]: d for d in listing["documents"]}


def job_count(client: TestClient) -> int:
    sessions = client.app.state.container.jobs.sessions  # type: ignore[attr-defined]
    with database.session_scope(sessions) as session:
        return int(session.scalar(select(func.count(IngestionJob.id))) or 0)


def peak_memory_bytes() -> int:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) * 1024


def test_bombs_fail_their_own_job_quickly_and_cost_no_memory(client: TestClient) -> None:
    kept = wait_for_job(
        client, upload(client, "keep.txt", b"The lighthouse keeper logs 14 ships a night.", "bombs")
    )
    assert kept["status"] == "succeeded"
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # the service's peak memory from here on
    before = peak_memory_bytes()
    started = time.monotonic()
    alias = wait_for_job(client, upload(client, "laughs.md", yaml_alias_bomb().encode(), "bombs"))
    assert alias["status"] == "failed" and "more than 20 aliases" in str(alias["error"])
    assert "RAG_INDEXING__YAML_MAX_ALIASES" in str(alias["error"])
    zipped = wait_for_job(
        client, upload(client, "plan.docx", empty_paragraphs_bomb(1_000_000), "bombs")
    )
    assert zipped["status"] == "failed" and "zip bomb" in str(zipped["error"])
    assert time.monotonic() - started < 30
    assert peak_memory_bytes() - before < 50 * 2**20
    assert set(sources(client, "bombs")) == {"keep.txt"}  # nothing stored, nothing lost


def test_a_slow_file_is_stopped_and_does_not_hold_other_uploads(client: TestClient) -> None:
    slow_id = upload(
        client, "slow.docx", slow_docx(100_000), "slow"
    )  # ~10 s to parse; passes the ratio check
    quick_id = upload(client, "quick.txt", b"Otters hold hands while they sleep.", "other")
    quick = wait_for_job(client, quick_id)
    slow = wait_for_job(client, slow_id)
    assert quick["status"] == "succeeded" and quick["report"]["added"] == 1  # type: ignore[index]
    assert slow["status"] == "failed" and f"longer than {READER_TIMEOUT_S:g} s" in str(
        slow["error"]
    )
    assert "RAG_INDEXING__READER_TIMEOUT_S" in str(slow["error"])
    assert str(quick["finished_at"]) < str(
        slow["finished_at"]
    )  # the second worker did not wait for it
    took = time.mktime(
        time.strptime(str(slow["finished_at"])[:19], "%Y-%m-%dT%H:%M:%S")
    ) - time.mktime(time.strptime(str(slow["started_at"])[:19], "%Y-%m-%dT%H:%M:%S"))
    assert took <= READER_TIMEOUT_S + 6


def test_non_ascii_names_do_not_collide_and_long_names_keep_their_extension(
    client: TestClient,
) -> None:
    first = wait_for_job(
        client, upload(client, "報告.txt", "四半期の売上は十二パーセント増えた。".encode(), "names")
    )
    second = wait_for_job(
        client, upload(client, "отчёт.txt", "Выручка за квартал выросла на 12%.".encode(), "names")
    )
    assert first["status"] == second["status"] == "succeeded"
    assert second["report"]["added"] == 1 and second["report"]["updated"] == 0  # type: ignore[index]
    odd = [wait_for_job(client, upload(client, name, f"Note {i} about {name!r}.".encode(), "names"))
           for i, name in enumerate(["a?.txt", "a*.txt"])]  # fmt: skip
    assert all(job["report"]["added"] == 1 for job in odd)  # type: ignore[index]
    long_name = "quarterly-report-" * 15 + ".md"
    long_job = wait_for_job(
        client, upload(client, long_name, b"# Long\nA report with a very long name.", "names")
    )
    assert long_job["status"] == "succeeded", long_job["error"]
    stored = sources(client, "names")
    assert {"報告.txt", "отчёт.txt"} <= set(stored) and len(stored) == 5
    assert all(source.endswith((".txt", ".md")) for source in stored)
    # The same name again is the same document: replaced, and the report says so.
    again = wait_for_job(
        client, upload(client, "報告.txt", "売上は十五パーセント増えた。".encode(), "names")
    )
    assert again["report"]["updated"] == 1 and len(sources(client, "names")) == 5  # type: ignore[index]


def test_a_long_csv_field_reports_its_row_and_indexes_the_others(client: TestClient) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "text"])
    writer.writerow(["tides", "Tides rise twice a day."])
    # 145,200 characters, over the csv module's 131,072; words over 100 characters are one
    # token each for the embedder's tokenizer, so this row stays a few chunks.
    writer.writerow(["long", " ".join(["sea" * 40] * 1_200)])
    writer.writerow(["huge", "x" * (MAX_DOCUMENT_CHARS + 1)])
    writer.writerow(["currents", "Currents carry warm water north."])
    job = wait_for_job(client, upload(client, "rows.csv", buffer.getvalue().encode(), "tables"))
    assert job["status"] == "succeeded" and job["report"]["added"] == 3  # type: ignore[index]
    [failure] = job["report"]["failed"]  # type: ignore[index]
    assert failure["path"] == "rows.csv" and "200,001 characters" in failure["reason"]
    assert "RAG_INDEXING__MAX_DOCUMENT_CHARS" in failure["reason"]
    assert set(sources(client, "tables")) == {
        "rows.csv#tides",
        "rows.csv#long",
        "rows.csv#currents",
    }


def test_upload_metadata_over_the_limits_gets_422_before_a_job_exists(client: TestClient) -> None:
    jobs_before = job_count(client)
    deep = client.post(
        "/documents", data={"text": "hello", "collection": "meta", "metadata": nested_json(900)}
    )
    assert deep.status_code == 422 and "nested deeper than" in deep.json()["error"]["message"]
    large = client.post(
        "/documents",
        data={
            "text": "hello",
            "collection": "meta",
            "metadata": json.dumps({"blob": "x" * 70_000}),
        },
    )
    assert large.status_code in (413, 422) and "MAX_METADATA_KB" in large.json()["error"]["message"]
    assert job_count(client) == jobs_before
    fine = client.post(
        "/documents",
        data={"text": "hello there", "collection": "meta", "metadata": '{"a": {"b": 1}}'},
    )
    assert (
        fine.status_code == 202 and wait_for_job(client, fine.json()["id"])["status"] == "succeeded"
    )


def test_two_workers_index_uploads_to_several_collections_at_once(client: TestClient) -> None:
    texts = {f"{animal}.txt": f"The {animal} is a seabird of the North Atlantic, number {i}." for i, animal in
             enumerate(["puffin", "gannet", "fulmar", "kittiwake", "razorbill", "guillemot"])}  # fmt: skip
    job_ids = [
        upload(client, name, text.encode(), f"birds-{i % 2}")
        for i, (name, text) in enumerate(texts.items())
    ]
    jobs = [wait_for_job(client, job_id) for job_id in job_ids]
    assert all(job["status"] == "succeeded" and job["report"]["added"] == 1 for job in jobs), jobs  # type: ignore[index]
    assert len(sources(client, "birds-0")) == len(sources(client, "birds-1")) == 3
    catalog = client.app.state.container.catalog  # type: ignore[attr-defined]
    for collection in ("birds-0", "birds-1"):
        store = catalog.writable_store(collection)
        try:
            consistency = store.check(
                repair=False
            )  # SQL, faiss and BM25 agree after concurrent writers
        finally:
            store.close()
        assert consistency.consistent and consistency.vectors == consistency.sql_chunks == 3, (
            consistency
        )
