"""Values passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Metadata = dict[str, Any]


@dataclass(frozen=True)
class Section:
    """Metadata for the text from ``start_char`` on (until the next section): a PDF page."""

    start_char: int
    metadata: Metadata


@dataclass(frozen=True)
class SourceDocument:
    """A document as a reader produced it, before chunking."""

    source: str
    text: str
    metadata: Metadata = field(default_factory=dict)
    sections: tuple[Section, ...] = ()


@dataclass(frozen=True)
class ChunkSpan:
    """A piece of a document's text, located by character offsets."""

    ordinal: int
    text: str
    start_char: int
    end_char: int
    token_count: int
    metadata: Metadata | None = None


@dataclass(frozen=True)
class RetrievedChunk:
    chunk_id: int
    document_id: int
    score: float
    text: str
    metadata: Metadata
    ordinal: int = 0
    start_char: int = 0
    end_char: int = 0
    merged_ids: tuple[int, ...] = ()  # set when adjacent chunks were joined into this one

    @property
    def chunk_ids(self) -> tuple[int, ...]:
        """Every stored chunk this passage covers (one, or several adjacent ones)."""
        return self.merged_ids or (self.chunk_id,)


@dataclass(frozen=True)
class PromptBlock:
    """One BEGININPUT block: the chunks it holds and the metadata lines it shows."""

    position: int  # 0 for the first block of the prompt
    chunks: tuple[RetrievedChunk, ...]
    metadata_lines: tuple[tuple[str, str], ...]
    text: str


@dataclass(frozen=True)
class Citation:
    block_position: int
    chunk_ids: tuple[int, ...]
    document_id: int
    metadata: Metadata
    cited_lines: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class UnverifiedCitation:
    cited_lines: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


@dataclass(frozen=True)
class Answer:
    text: str  # the answer without its citation trailer
    raw_answer: str
    sources: tuple[RetrievedChunk, ...]
    citations: tuple[Citation, ...]
    unverified_citations: tuple[UnverifiedCitation, ...]
    prompt: str
    answerable: bool
    abstention_reason: str | None
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class TokenUsage:
    """Tokens the model server counted for one answer (every call it took, added up)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: Role
    content: str


@dataclass
class StreamReport:
    """Filled in by ``stream`` as the server reports it (usage comes in the last part)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
