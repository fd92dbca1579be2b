"""HTML: main content by trafilatura (navigation and boilerplate dropped), as
Markdown so that tables stay tables and headings give each chunk its ``section``;
the title and the <meta> tags become metadata."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import lxml.html
import trafilatura

from indexer.readers.base import ReaderOptions, ReadResult, file_document, read_text_file
from indexer.readers.structure import markdown_sections
from rag.errors import DocumentReadError

_META_KEYS = {
    "author": "author",
    "article:author": "author",
    "date": "date",
    "article:published_time": "date",
    "dc.date": "date",
    "og:url": "url",
    "og:title": "title",
    "description": "description",
    "og:description": "description",
    "keywords": "keywords",
}


def meta_tags(tree: lxml.html.HtmlElement) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    title = tree.findtext(".//title")
    if title and title.strip():
        metadata["title"] = " ".join(title.split())
    canonical = tree.xpath('//link[@rel="canonical"]/@href')
    if canonical:
        metadata["url"] = canonical[0].strip()
    for element in tree.iter("meta"):
        name = (element.get("name") or element.get("property") or "").strip().lower()
        content = (element.get("content") or "").strip()
        if not name or not content or name.startswith(("viewport", "twitter:", "theme-color")):
            continue
        metadata.setdefault(_META_KEYS.get(name, name), content)
    return metadata


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    markup = read_text_file(path)
    try:
        tree = lxml.html.document_fromstring(markup)
    except (ValueError, lxml.etree.ParserError) as exc:
        raise DocumentReadError(str(path), f"unparseable HTML: {exc}") from exc
    text = trafilatura.extract(
        markup,
        output_format="markdown",
        include_comments=False,
        include_tables=True,
        favor_recall=True,
        deduplicate=False,
    )
    if not text:
        # Pages that are all "boilerplate" to trafilatura (tiny pages) still have body text.
        body = tree.find("body")
        text = body.text_content().strip() if body is not None else ""
    if not text:
        raise DocumentReadError(str(path), "no text content in HTML")
    document = file_document(path, text, meta_tags(tree))
    return ReadResult(documents=[replace(document, sections=markdown_sections(text))])
