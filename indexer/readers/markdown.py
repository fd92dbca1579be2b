"""Markdown; YAML front matter becomes metadata, else the first heading is the title.

Front matter is read with an alias budget and size and depth limits
(``front_matter.py``): a file whose metadata would expand beyond them is reported.
Each chunk carries its heading path as ``section``.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import yaml

from indexer.metadata_limits import MetadataLimitError
from indexer.readers.base import ReaderOptions, ReadResult, file_document, read_text_file
from indexer.readers.front_matter import split_front_matter
from indexer.readers.structure import markdown_sections
from rag.errors import DocumentReadError

_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    options = options or ReaderOptions()
    raw = read_text_file(path)
    try:
        metadata, content = split_front_matter(raw, options.limits)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise DocumentReadError(str(path), f"invalid front matter: {exc}") from exc
    except MetadataLimitError as exc:
        raise DocumentReadError(str(path), f"front matter refused: {exc}") from exc
    except RecursionError as exc:
        raise DocumentReadError(str(path), "front matter nests too deeply to read") from exc
    if "title" not in metadata and (heading := _HEADING.search(content)):
        metadata["title"] = heading.group(1)
    document = file_document(path, content, metadata)
    return ReadResult(documents=[replace(document, sections=markdown_sections(content))])
