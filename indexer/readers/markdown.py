"""Markdown; YAML front matter becomes metadata, else the first heading is the title.
Each chunk carries its heading path as ``section``."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import frontmatter
import yaml

from indexer.readers.base import ReaderOptions, ReadResult, file_document, read_text_file
from indexer.readers.structure import markdown_sections
from rag.errors import DocumentReadError

_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    raw = read_text_file(path)
    try:
        post = frontmatter.loads(raw)
    except yaml.YAMLError as exc:
        raise DocumentReadError(str(path), f"invalid YAML front matter: {exc}") from exc
    metadata = dict(post.metadata)
    if "title" not in metadata and (heading := _HEADING.search(post.content)):
        metadata["title"] = heading.group(1)
    document = file_document(path, post.content, metadata)
    return ReadResult(documents=[replace(document, sections=markdown_sections(post.content))])
