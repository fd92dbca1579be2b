"""Hostile requests against a real server: limits before bytes, no 500 from input, hardening.

The service runs under uvicorn on a real socket (the code path of `rag serve`),
with a real embedder, SQLite and API keys; the model server is a closed port
(nothing here needs an answer), so `/health` says degraded and `/ask` answers
503 or abstains. Raw sockets send what an HTTP client library would not: a
declared length far above the body, a chunked body that never ends, a kept-alive
connection after a 500.
"""

from __future__ import annotations

import json
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from api.app import create_app
from rag.config import Settings
from rag.generation.vllm_server import free_port
from rag.storage.models import IngestionJob
from tests.conftest import make_settings

pytestmark = [pytest.mark.integration]

UPLOAD_MB = 2.0  # small, so that bodies over it are quick to send
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@dataclass(frozen=True)
class Service:
    url: str
    port: int
    admin_key: str
    reader_key: str
    settings: Settings
    app: FastAPI

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin_key}"}


def _boom() -> None:
    raise RuntimeError("an unexpected failure inside a route")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    settings = make_settings(
        data_dir,
        llm={"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "none", "max_retries": 0},
        api={"max_upload_mb": UPLOAD_MB},
    )
    app = create_app(settings)
    app.add_api_route("/test-only/boom", _boom, methods=["GET"], include_in_schema=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 180
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    keys = app.state.container.keys
    admin = keys.create("hostile-admin", [], admin=True).key
    reader = keys.create("hostile-reader", ["default"]).key
    try:
        yield Service(f"http://127.0.0.1:{port}", port, admin, reader, settings, app)
    finally:
        server.should_exit = True
        thread.join(60)


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, headers=service.auth(), timeout=60) as http:
        yield http


def raw_exchange(
    port: int, request: bytes, read_timeout_s: float = 10
) -> tuple[int, dict[str, str], bytes, bool]:
    """Send ``request`` bytes, read until the server closes; the status, headers, body, and
    whether the server closed the connection (rather than leaving it open)."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout_s) as sock:
        sock.sendall(request)
        received = b""
        closed = False
        try:
            while chunk := sock.recv(65536):
                received += chunk
            closed = True
        except TimeoutError:
            closed = False
    return (*_parse_response(received), closed)


def _parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return status, headers, body


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, body = out + rest[:size], rest[size + 2 :]
    return out


def _error(body: bytes) -> dict[str, str]:
    return json.loads(body)["error"]  # type: ignore[no-any-return]


# --- limits before bytes -------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(
    service: Service,
) -> None:
    # Expect: 100-continue makes the point: a server that wanted the body would first say 100.
    request = (
        f"POST /documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {service.admin_key}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000000000\r\n"
        "Expect: 100-continue\r\n\r\n"
    ).encode()
    status, headers, body, closed = raw_exchange(service.port, request + b"--b\r\n")
    assert status == 413, body
    assert headers["connection"] == "close" and closed
    error = _error(body)
    assert error["type"] == "payload_too_large" and "nothing was read" in error["message"]
    assert b"100 Continue" not in body


def test_the_limit_is_checked_before_the_key(service: Service) -> None:
    request = b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9000000000\r\n\r\n"
    status, headers, _, closed = raw_exchange(service.port, request)
    assert (
        status == 413 and closed
    )  # no 401: nothing about the body is looked at, not even who sent it


@pytest.mark.parametrize(
    ("path", "content_type", "opening"),
    [
        ("/ask", "application/json", b'{"question": "'),
        ("/documents", "multipart/form-data; boundary=b",
         b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'),
    ],
)  # fmt: skip
def test_a_chunked_body_is_cut_off_at_the_limit_while_it_streams(
    service: Service, path: str, content_type: str, opening: bytes
) -> None:
    planned = (
        25 * service.settings.api.max_upload_bytes
    )  # far above either limit and the socket buffers
    sent = 0
    with socket.create_connection(("127.0.0.1", service.port), timeout=20) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {service.admin_key}\r\n"
            f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            + f"{len(opening):x}\r\n".encode()
            + opening
            + b"\r\n"
        )
        piece = b"x" * 65536
        chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        try:
            while sent < planned:
                sock.sendall(chunk)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what we want
        received = b""
        try:
            while part := sock.recv(65536):
                received += part
        except (ConnectionResetError, TimeoutError):
            pass
    status, headers, body = _parse_response(received)
    assert status == 413 and _error(body)["type"] == "payload_too_large", body
    assert headers["connection"] == "close"
    assert sent < planned, "the whole body was accepted before the refusal"


def multipart(fields: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body of plain fields (httpx sends fields alone URL-encoded)."""
    parts = [
        f'--b\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields.items()
    ]
    return ("".join(parts) + "--b--\r\n").encode(), {
        "content-type": "multipart/form-data; boundary=b"
    }


def test_text_up_to_the_upload_limit_is_accepted_and_over_it_is_413(client: httpx.Client) -> None:
    # Starlette caps a form field at 1 MB with a 400; the README promises MAX_UPLOAD_MB, then 413.
    fits = "Glaciers move slowly." + " " * 1_400_000  # over Starlette's 1 MB, one chunk to embed
    accepted = client.post("/documents", data={"text": fits, "collection": "spill"})  # URL-encoded
    assert accepted.status_code == 202, accepted.text
    body, headers = multipart({"text": fits, "collection": "spill", "source": "spill-2"})
    assert client.post("/documents", content=body, headers=headers).status_code == 202
    over_text = "y" * int(UPLOAD_MB * 1_000_000 + 10)
    encoded = client.post("/documents", data={"text": over_text})
    assert encoded.status_code == 413, encoded.text
    assert encoded.json()["error"] == {"type": "payload_too_large", "message": "the text is larger than 2 MB",
                                       "details": None}  # fmt: skip
    body, headers = multipart({"text": over_text})
    parted = client.post("/documents", content=body, headers=headers)
    assert parted.status_code == 413 and parted.headers["connection"] == "close", parted.text
    assert parted.json()["error"]["message"] == "the field 'text' is larger than 2 MB"


def test_a_file_over_the_limit_is_413_as_it_is_parsed(client: httpx.Client) -> None:
    big = client.post(
        "/documents", files={"file": ("big.txt", b"z" * int(UPLOAD_MB * 1_000_000 + 10))}
    )
    assert big.status_code == 413 and "'file'" in big.json()["error"]["message"], big.text


def test_uploads_spool_under_the_data_dir_never_the_system_temp_dir(
    service: Service, client: httpx.Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # 1.6 MB: over the 1 MB Starlette keeps in memory (spaces: one chunk to embed, not a thousand)
    content = ("A page about moraines and crevasses." + " " * 1_600_000).encode()
    with (
        monkeypatch.context() as patched
    ):  # a system temp dir that cannot be written: spooling there fails
        patched.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
        response = client.post("/documents", files={"file": ("moraine.txt", content, "text/plain")},
                               data={"collection": "spool"})  # fmt: skip
    assert response.status_code == 202, response.text
    saved = service.settings.data_dir / "uploads" / response.json()["id"] / "moraine.txt"
    assert (
        not saved.exists() or saved.read_bytes() == content
    )  # (the job may have finished and removed it)
    spool = service.settings.data_dir / "spool"
    assert spool.is_dir() and list(spool.iterdir()) == []  # unlinked at once: nothing left behind
    job = _wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job


def _wait_for_job(client: httpx.Client, job_id: str, timeout_s: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


# --- no 500 from input ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def indexed(service: Service) -> int:
    """One document with metadata, so that filters reach SQL's JSON paths."""
    with httpx.Client(base_url=service.url, headers=service.auth(), timeout=60) as http:
        metadata = {
            "title": "Aletsch",
            "year": 2024,
            "og:title": "Glacier",
            "Straße": "Konkordiaplatz",
        }
        sent = http.post("/documents", data={"text": "The Aletsch Glacier is the largest glacier in the Alps.",
                                             "metadata": json.dumps(metadata)})  # fmt: skip
        assert sent.status_code == 202, sent.text
        job = _wait_for_job(http, sent.json()["id"])
        assert job["status"] == "succeeded", job
        return len(http.get("/documents").json()["documents"])


@pytest.mark.parametrize(
    "key", ['source" OR 1=1 --', 'a"b', "a\\b", " leading", "", "x" * 129, "line\nbreak"]
)
def test_hostile_filter_keys_are_422_with_the_pattern(
    client: httpx.Client, indexed: int, key: str
) -> None:
    response = client.post(
        "/ask", json={"question": "How large is the glacier?", "filters": {key: "x"}}
    )
    assert response.status_code == 422, response.text
    assert "should match pattern" in response.json()["error"]["message"]


@pytest.mark.parametrize("key", ["og:title", "Straße", "title", "year"])
def test_ordinary_filter_keys_still_reach_the_search(
    client: httpx.Client, indexed: int, key: str
) -> None:
    response = client.post(
        "/ask", json={"question": "How large is the glacier?", "filters": {key: "x"}}
    )
    assert response.status_code == 200, (
        response.text
    )  # nothing matches "x": abstains without the model
    assert response.json()["answerable"] is False


def test_numbers_out_of_float_range_are_refused(client: httpx.Client, indexed: int) -> None:
    body = '{"question": "q", "filters": {"year": {"gt": %s}}}'
    digits_400 = client.post(
        "/ask", content=body % ("9" * 400), headers={"content-type": "application/json"}
    )
    assert (
        digits_400.status_code == 400
        and "400 digits is out of range" in digits_400.json()["error"]["message"]
    )
    just_over = client.post(
        "/ask", content=body % str(2 * 10**308), headers={"content-type": "application/json"}
    )
    assert (
        just_over.status_code == 422 and "out of range" in just_over.json()["error"]["message"]
    ), just_over.text
    for literal in ("1e400", "NaN", "-Infinity"):
        refused = client.post(
            "/ask", content=body % literal, headers={"content-type": "application/json"}
        )
        assert refused.status_code == 400 and "refused" in refused.json()["error"]["message"], (
            literal,
            refused.text,
        )


@pytest.mark.parametrize("depth", [900, 100_000])
def test_deeply_nested_json_bodies_are_400_before_parsing(client: httpx.Client, depth: int) -> None:
    body = '{"question": "q", "filters": {"a": ' + "[" * depth + "]" * depth + "}}"
    response = client.post("/ask", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "nested deeper than 32 levels" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("metadata", "status", "message"),
    [
        (
            '{"a": ' * 100_000 + "1" + "}" * 100_000,
            413,
            "larger than",
        ),  # 700 KB of nesting: size first
        ('{"a": ' * 900 + "1" + "}" * 900, 422, "nested deeper than 32 levels"),
        ('{"a": ' * 33 + "1" + "}" * 33, 422, "nested deeper than 32 levels"),
        ('{"a": NaN}', 422, "NaN"),
        ('{"a": 1e999}', 422, "out of range"),
        ('{"a": "\\ud800"}', 422, "lone surrogate"),
        ('{"a": "' + "m" * 70_000 + '"}', 413, "RAG_API__MAX_METADATA_KB"),
        ("[1, 2]", 422, "JSON object"),
        ("{broken", 422, "not valid JSON"),
    ],
)
def test_hostile_upload_metadata_is_refused_before_a_job_exists(
    service: Service, client: httpx.Client, metadata: str, status: int, message: str
) -> None:
    jobs_before = _job_count(service)
    response = client.post("/documents", data={"text": "Some text.", "metadata": metadata})
    assert response.status_code == status, response.text[:300]
    assert message in response.json()["error"]["message"]
    assert _job_count(service) == jobs_before


def _job_count(service: Service) -> int:
    with service.app.state.container.catalog.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(IngestionJob)).scalar_one())


def test_metadata_nested_up_to_the_limit_is_indexed(client: httpx.Client) -> None:
    # RAG_INDEXING__MAX_METADATA_DEPTH (16) is the tighter of the two limits on upload metadata.
    nested = '{"a": ' * 15 + '"deep"' + "}" * 15
    response = client.post("/documents", data={"text": "Nested metadata text.", "metadata": nested,
                                               "collection": "nested"})  # fmt: skip
    assert response.status_code == 202, response.text
    assert _wait_for_job(client, response.json()["id"])["status"] == "succeeded"


def test_an_unexpected_error_gets_a_whole_500_and_a_clean_close(service: Service) -> None:
    request = b"GET /test-only/boom HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nX-Request-ID: boom-1\r\n\r\n"
    status, headers, body, closed = raw_exchange(service.port, request)
    assert status == 500 and _error(body)["type"] == "internal_error"
    assert (
        headers["connection"] == "close" and closed
    )  # said, then done: no reset on a reused connection
    assert headers["x-request-id"] == "boom-1" and headers["x-content-type-options"] == "nosniff"
    with httpx.Client(
        base_url=service.url, timeout=30
    ) as http:  # one client, one pool: it must not break
        assert http.get("/test-only/boom").status_code == 500
        assert http.get("/health").status_code == 503  # the model server is down in this module


# --- hardening -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/static/main.js", "/health", "/documents", "/no-such-page", "/docs"]
)
def test_security_headers_on_every_response(service: Service, path: str) -> None:
    response = httpx.get(service.url + path, timeout=30)  # no key: 401s and 404s get them too
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, (path, name)
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy


def test_api_docs_load_only_the_services_own_files(service: Service) -> None:
    for page in ("/docs", "/redoc"):
        html = httpx.get(service.url + page, timeout=30).text
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
        assert scripts and all(not body.strip() for _, body in scripts), "inline script"
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith(("/docs-assets/", "/static/")) for s in sources), (
            sources
        )
        for source in sources:
            assert httpx.get(service.url + source, timeout=30).status_code == 200, source
    redoc_policy = httpx.get(service.url + "/redoc", timeout=30).headers["content-security-policy"]
    assert "script-src 'self';" in redoc_policy  # styles inline for ReDoc, scripts never
    assert (
        httpx.get(service.url + "/openapi.json", timeout=30).json()["info"]["title"]
        == "Contextual RAG"
    )


def test_docs_can_be_turned_off(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    app = create_app(make_settings(tmp_path / "data", api={"docs": False}))
    bare = TestClient(app)  # no lifespan: these paths need nothing built
    for path in ("/docs", "/redoc", "/openapi.json", "/docs-assets/swagger-ui.css"):
        assert bare.get(path).status_code == 404, path


def test_health_names_nothing_internal_without_an_admin_key(service: Service) -> None:
    address = service.settings.llm.base_url or ""
    for headers in ({}, {"Authorization": "Bearer rag_wrong"}, service.auth(service.reader_key)):
        body = httpx.get(service.url + "/health", headers=headers, timeout=30).text
        assert address not in body and "127.0.0.1" not in body and "sqlite" not in body, headers
    admin = httpx.get(service.url + "/health", headers=service.auth(), timeout=30).json()
    assert address in admin["llm"]["detail"] and admin["database"]["detail"] == "sqlite"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("trace-123", True), ("00-4bf92f3577b34da6-01", True), ("a" * 128, True), ("a" * 129, False),
     ("<script>alert(1)</script>", False), ("with space", False), ("ünïcode", False), ("-leading", False)],
)  # fmt: skip
def test_request_ids_are_echoed_only_when_well_formed(
    client: httpx.Client, sent: str, kept: bool
) -> None:
    returned = client.get("/collections", headers={"X-Request-ID": sent.encode("utf-8")})
    echoed = returned.headers["x-request-id"]
    assert (echoed == sent) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)
