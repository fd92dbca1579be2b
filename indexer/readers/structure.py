"""Section paths: where in a document's headings a passage sits, as chunk metadata.

A reader records a ``Section`` wherever the heading trail changes; the chunker
gives each chunk the section it starts in (rag/text/sections.py), so ``/ask``
sources and the prompt's BEGINCONTEXT block show ``section: Report > Vans``.
"""

from __future__ import annotations

import re
from typing import Any

from rag.types import Section

SECTION_KEY = "section"
SEPARATOR = " > "
MAX_TITLE_CHARS = 80  # a heading that is really a paragraph is cut

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def clean_title(title: str) -> str:
    text = " ".join(title.split()).replace(SEPARATOR.strip(), "-")
    return text if len(text) <= MAX_TITLE_CHARS else text[: MAX_TITLE_CHARS - 1] + "…"


class HeadingTrail:
    """The open headings, outermost first: a heading closes those of its level and below."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> str:
        title = clean_title(title)
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        if title:
            self._open.append((level, title))
        return self.path

    @property
    def path(self) -> str:
        return SEPARATOR.join(title for _, title in self._open)


class TextBuilder:
    """Joins blocks with blank lines; a ``Section`` starts wherever the metadata changes."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._sections: list[Section] = []
        self._current: dict[str, Any] | None = None

    def add(self, block: str, metadata: dict[str, Any] | None = None) -> None:
        block = block.strip()
        if not block:
            return
        if self._parts:
            self._parts.append("\n\n")
            self._length += 2
        metadata = {k: v for k, v in (metadata or {}).items() if v not in (None, "")}
        if metadata != self._current:
            self._sections.append(Section(start_char=self._length, metadata=metadata))
            self._current = metadata
        self._parts.append(block)
        self._length += len(block)

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def length(self) -> int:
        return self._length

    @property
    def sections(self) -> tuple[Section, ...]:
        """None when no block had any metadata: such a document's chunks stay as before."""
        if all(not section.metadata for section in self._sections):
            return ()
        return tuple(self._sections)


def markdown_sections(text: str) -> tuple[Section, ...]:
    """A section at every ATX heading (``#`` to ``######``) outside fenced code."""
    trail = HeadingTrail()
    sections: list[Section] = []
    in_fence = False
    position = 0
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (match := _ATX_HEADING.match(line.rstrip("\r\n"))):
            path = trail.enter(len(match.group(1)), match.group(2))
            sections.append(
                Section(start_char=position, metadata={SECTION_KEY: path} if path else {})
            )
        position += len(line)
    if sections and sections[0].start_char > 0:
        sections.insert(0, Section(start_char=0, metadata={}))
    return tuple(sections)
