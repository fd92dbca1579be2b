"""The web page in headless Chromium (Debian's, driven by Playwright) against a real service.

`rag serve` runs as its own process on the session's shared vLLM (tiny model), with API keys
required; screenshots are saved under test-artifacts/ (RAG_TEST_ARTIFACTS).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.security_headers import CONTENT_SECURITY_POLICY
from indexer.pipeline import Indexer
from rag.access.api_keys import ApiKeyStore
from rag.collections.store import CollectionStore
from rag.protocols import Embedder
from tests.conftest import CORPUS_DIR, MODELS_DIR, REPO_ROOT, make_settings
from tests.model_server import SharedModelServer
from tests.service_process import serve_in_process

pytestmark = [pytest.mark.integration, pytest.mark.llm, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("RAG_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))


@pytest.fixture(scope="module")
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[tuple[str, str]]:
    """The service's URL and an admin key."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    model_server: SharedModelServer = request.getfixturevalue(
        "model_server"
    )  # not started for a skip
    data_dir = tmp_path_factory.mktemp("web") / "data"
    settings = make_settings(data_dir)
    store = CollectionStore(settings, embedder)
    Indexer(store).index_paths([CORPUS_DIR])
    key = ApiKeyStore(store.sessions).create("browser", [], admin=True).key
    store.close()
    env = {
        "RAG_MODELS_DIR": str(MODELS_DIR),
        **model_server.env(),
        "RAG_LLM__MAX_ANSWER_TOKENS": "96",
        # Not the defaults: the page must take its limits from /config, not from a copy.
        "RAG_API__MAX_QUESTION_CHARS": "3500",
        "RAG_RETRIEVAL__MAX_TOP_K": "40",
        "RAG_RETRIEVAL__DEFAULT_TOP_K": "4",
    }
    with serve_in_process(data_dir, env, startup_timeout_s=900) as url:  # a busy 2-core machine
        yield url, key


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield instance
        instance.close()


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def open_page(
    browser: object, service: tuple[str, str], width: int = 1200, height: int = 900
) -> object:
    url, key = service
    page = browser.new_page(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
    page.goto(url)
    dialog = page.locator("#key-dialog")
    dialog.wait_for(state="visible")  # the page asks for the key: the service requires one
    page.get_by_label("Key", exact=True).fill(key)
    page.get_by_role("button", name="Use this key").click()
    dialog.wait_for(state="hidden")
    return page


def test_the_form_limits_come_from_config(browser: object, service: tuple[str, str]) -> None:
    from playwright.sync_api import expect

    url, _ = service
    config = httpx.get(url + "/config", timeout=30).json()  # no key needed
    assert config["question"]["max_length"] == 3500 and config["top_k"]["maximum"] == 40
    page = open_page(browser, service)
    assert page.evaluate("[...document.scripts].map((s) => [s.type, new URL(s.src).pathname])") == [
        ["module", "/static/main.js"]
    ]
    question = page.locator("#question")
    expect(question).to_have_attribute("maxlength", str(config["question"]["max_length"]))
    for selector, limits in (
        ("#top-k", config["top_k"]),
        ("#summarize-words", config["summary_words"]),
    ):
        field = page.locator(selector)
        expect(field).to_have_attribute("min", str(limits["minimum"]))
        expect(field).to_have_attribute("max", str(limits["maximum"]))
        expect(field).to_have_value(str(limits["default"]))
    collection = page.locator("#upload-collection")
    expect(collection).to_have_attribute("pattern", config["collection_name"]["pattern"])
    expect(collection).to_have_value(config["collection_name"]["default"])
    # The pattern compiles as the browser reads it (an invalid one would be ignored).
    mismatch = "(value) => { const f = document.querySelector('#upload-collection'); f.value = value; return f.validity.patternMismatch; }"
    assert [page.evaluate(mismatch, name) for name in ("coast", "team-a_1", "Coast", "-a", "a b")] == [
        False, False, True, True, True,
    ]  # fmt: skip
    page.close()


def test_ask_shows_the_streamed_answer_and_its_sources(
    browser: object, service: tuple[str, str]
) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, service)
    page.get_by_label("Question", exact=True).fill(
        "How high were the lava fountains when Kilauea erupted in 2023?"
    )
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#ask-status")).to_have_text("Done.", timeout=180_000)
    shot(page, "ask-answer-sources")
    turn = page.locator(".turn").last
    assert turn.locator(".answer").inner_text().strip(), turn.inner_text()
    shown = turn.locator(".sources").first.locator("li")  # cited or supporting sources, unfolded
    assert shown.count() >= 1
    first = shown.first
    expect(first).to_be_visible()
    expect(first).to_contain_text("Kilauea eruption report")
    link = first.locator("a")
    assert link.get_attribute("href") == "https://volcano.example.org/kilauea-2023"
    expect(first).to_contain_text("date: 2023-09-12")
    assert turn.locator(".sources mark").count() >= 1  # supporting sentences highlighted
    folded = turn.locator("details.other-sources")
    if folded.count():  # the passages the answer does not use are folded away
        expect(folded.locator("li").first).to_be_hidden()
        folded.locator("summary").click()
        expect(folded.locator("li").first).to_be_visible()
    shot(page, "ask-answer-sources")

    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".turn")).to_have_count(0)
    page.get_by_label("Question", exact=True).fill(
        "What is the best recipe for a chocolate soufflé with raspberries?"
    )
    page.get_by_label("Question", exact=True).press("Control+Enter")  # keyboard submit
    not_answerable = page.locator(".turn .not-answerable")
    expect(not_answerable).to_be_visible(timeout=180_000)
    expect(not_answerable).to_contain_text("Answerable: no")
    shot(page, "ask-not-answerable")
    page.close()


def test_follow_up_is_understood_in_its_conversation(
    browser: object, service: tuple[str, str]
) -> None:
    """The follow-up names nothing from the corpus: alone (top 2) it finds the rover's and the
    glacier's ice; after the first turn it finds the volcano report."""
    from playwright.sync_api import expect

    page = open_page(browser, service)
    page.get_by_label("Chunks to retrieve", exact=True).fill("2")
    page.get_by_label("Question", exact=True).fill(
        "How large was the lava lake when Kilauea erupted in 2023?"
    )
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#ask-status")).to_have_text("Done.", timeout=180_000)
    expect(page.get_by_role("button", name="New conversation")).to_be_visible()
    page.get_by_label("Question", exact=True).fill("and how deep is it?")
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator(".turn")).to_have_count(2)
    expect(page.locator("#ask-status")).to_have_text("Done.", timeout=180_000)
    second = page.locator(".turn").nth(1)
    expect(second.locator(".question")).to_contain_text("and how deep is it?")
    expect(second.locator(".searched")).to_contain_text("Searched as:")
    assert "Kilauea eruption report" in second.text_content()  # among its sources, shown or folded
    expect(page.locator(".turn").first.locator(".question")).to_contain_text(
        "lava lake"
    )  # the thread stays
    shot(page, "ask-follow-up")
    page.close()


def test_upload_follow_the_job_then_summarize(browser: object, service: tuple[str, str]) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, service)
    page.get_by_role("tab", name="Documents").click()
    expect(page.locator("#documents-table tbody tr").first).to_be_visible()
    page.get_by_label("or text", exact=True).fill(
        "The Northbridge lighthouse was automated in 1987. Its lamp is visible for 22 nautical miles. "
        "Keepers lived on the island for ninety years before that."
    )
    page.get_by_label("Title", exact=True).fill("Northbridge lighthouse")
    page.get_by_label("URL", exact=True).fill("https://example.org/lighthouse")
    page.get_by_label("Collection", exact=True).fill("coast")
    page.get_by_role("button", name="Upload and index").click()
    expect(page.locator("#jobs li").first).to_contain_text("succeeded", timeout=120_000)
    expect(page.locator("#documents-table")).to_contain_text("Northbridge lighthouse")
    shot(page, "documents-upload")

    page.get_by_role("tab", name="Summarize").click()
    page.get_by_label("Indexed document", exact=True).select_option(
        label="Northbridge lighthouse (coast)"
    )
    page.get_by_label("Length in words", exact=True).fill("30")
    page.get_by_role("button", name="Summarize", exact=True).click()
    expect(page.locator("#summarize-status")).to_contain_text("Done", timeout=180_000)
    assert page.locator("#summary").inner_text().strip()
    shot(page, "summarize")

    page.get_by_role("tab", name="Documents").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete Northbridge lighthouse").click()
    expect(page.locator("#upload-status")).to_contain_text("Deleted")
    expect(page.locator("#documents-table")).not_to_contain_text("Northbridge lighthouse")
    page.close()


def test_phone_width_and_labels(browser: object, service: tuple[str, str]) -> None:
    page = open_page(browser, service, width=390, height=844)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    unlabeled = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), textarea, select')]
             .filter((control) => control.labels.length === 0).map((control) => control.id)"""
    )
    assert unlabeled == []
    shot(page, "phone-ask")
    page.close()


def watched_page(browser: object, url: str) -> tuple[object, list[str], list[str]]:
    """A page that records Content-Security-Policy violations and every request's URL."""
    page = browser.new_page()  # type: ignore[attr-defined]
    violations: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if m.text.startswith("CSP ") else None)
    page.on("request", lambda r: requests.append(r.url))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " (e) => console.error('CSP ' + e.violatedDirective + ' ' + e.blockedURI))"
    )
    page.goto(url)
    return page, violations, requests


def test_the_page_and_the_api_docs_work_under_the_content_security_policy(
    browser: object, service: tuple[str, str]
) -> None:
    from playwright.sync_api import expect

    url, key = service
    assert httpx.get(url, timeout=30).headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page, violations, requests = watched_page(browser, url)
    page.get_by_label("Key", exact=True).fill(key)
    page.get_by_role("button", name="Use this key").click()
    page.get_by_role("tab", name="Documents").click()
    expect(page.locator("#documents-table tbody tr").first).to_be_visible()
    page.close()
    assert (
        violations == []
    )  # no inline script or style on the page; its modules load under script-src 'self'
    assert {r.removeprefix(url) for r in requests} >= {
        "/static/main.js",
        "/static/api.js",
        "/config",
    }

    docs, violations, requests = watched_page(browser, url + "/docs")
    expect(docs.locator(".opblock").first).to_be_visible(
        timeout=30_000
    )  # Swagger UI, from our own files
    assert docs.locator(".opblock").count() >= 8
    shot(docs, "api-docs")
    docs.close()
    assert violations == []
    assert all(r.startswith((url, "data:")) for r in requests), requests  # nothing from a CDN

    redoc, violations, requests = watched_page(browser, url + "/redoc")
    expect(redoc.locator("[data-section-id]").first).to_be_attached(timeout=30_000)
    redoc.close()
    # ReDoc's footer asks for the Redocly logo from its CDN: the policy blocks it, nothing else.
    assert all("cdn.redoc.ly" in v for v in violations), violations
    assert all(r.startswith((url, "data:", "blob:")) or "cdn.redoc.ly" in r for r in requests), (
        requests
    )
