"""GET /config and the web page's files: the limits come from the service's own sources, and
the page is ES modules under the Content-Security-Policy (real app, embedder and SQLite; the
model server is a closed port, nothing here needs an answer)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from api.app import WEB_DIR, create_app
from api.schemas import AskRequest, CollectionName, SummarizeRequest
from api.security_headers import CONTENT_SECURITY_POLICY
from rag.collections.names import (
    DEFAULT_COLLECTION,
    InvalidCollectionName,
    validate_collection_name,
)
from rag.generation.vllm_server import free_port
from tests.conftest import make_settings

pytestmark = [pytest.mark.integration]

JAVASCRIPT = ("text/javascript", "application/javascript")


def test_config_reports_the_limits_the_service_checks(tmp_path: Path) -> None:
    """Settings other than the defaults, so a number copied anywhere would show."""
    settings = make_settings(
        tmp_path / "data",
        llm={"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "none", "max_retries": 0},
        api={"max_question_chars": 1234},
        retrieval={"max_top_k": 17, "default_top_k": 3},
    )
    with TestClient(create_app(settings)) as client:  # API keys on; /config needs none
        assert client.get("/documents").status_code == 401
        response = client.get("/config")
        assert response.status_code == 200, response.text
        schema = client.get("/openapi.json").json()
    ask_top_k = next(
        s
        for s in AskRequest.model_json_schema()["properties"]["top_k"]["anyOf"]
        if s["type"] == "integer"
    )
    words = SummarizeRequest.model_json_schema()["properties"]["words"]
    assert response.json() == {
        "question": {"max_length": 1234},
        "top_k": {"minimum": ask_top_k["minimum"], "maximum": 17, "default": 3},
        "summary_words": {
            "minimum": words["minimum"],
            "maximum": words["maximum"],
            "default": words["default"],
        },
        "collection_name": {
            "pattern": TypeAdapter(CollectionName).json_schema()["pattern"],
            "default": DEFAULT_COLLECTION,
        },
    }
    ok = schema["paths"]["/config"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    assert ok["$ref"].endswith("/ConfigResponse")
    assert set(schema["components"]["schemas"]["ConfigResponse"]["properties"]) == set(
        response.json()
    )


@pytest.mark.parametrize(
    "name", ["default", "team-a_1", "0", "a" * 64, "Team", "-a", "_a", "a" * 65, "a b", ""]
)
def test_one_collection_name_rule_for_the_schema_and_the_store(name: str) -> None:
    try:
        validate_collection_name(name)
        stored = True
    except InvalidCollectionName:
        stored = False
    try:
        TypeAdapter(CollectionName).validate_python(name)
        accepted = True
    except ValidationError:
        accepted = False
    assert stored == accepted == (name in ("default", "team-a_1", "0", "a" * 64))


def _imports(source: str) -> list[str]:
    return re.findall(r'^import [^;]*? from "\./([\w-]+\.js)";$', source, re.M)


def test_the_page_is_es_modules_under_the_content_security_policy(tmp_path: Path) -> None:
    client = TestClient(
        create_app(make_settings(tmp_path / "data"))
    )  # no lifespan: static files only
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert (
        "script-src 'self';" in CONTENT_SECURITY_POLICY
        and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    )
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts == [(' type="module" src="/static/main.js"', "")]  # no inline script
    # The limits come from /config, not from the page.
    assert not re.search(r"\s(maxlength|min|max|pattern)=", page.text), (
        "a limit is copied into index.html"
    )

    loaded: dict[str, str] = {}
    pending = ["main.js"]
    while pending:  # every module the page imports, as the browser would fetch it
        name = pending.pop()
        if name in loaded:
            continue
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].split(";")[0] in JAVASCRIPT, (
            name,
            response.headers["content-type"],
        )
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        loaded[name] = response.text
        pending.extend(_imports(response.text))
    assert set(loaded) == {path.name for path in WEB_DIR.glob("*.js")}  # no module left unused
    readers = [name for name, source in loaded.items() if "getReader(" in source]
    assert readers == ["api.js"]  # one server-sent-events reader for every stream
