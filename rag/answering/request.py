"""What a caller asks of the answer service: the question(s), where to look, how to answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.config import RetrievalMode
from rag.generation.conversation import GenerationOptions
from rag.retrieval.filters import MetadataFilters
from rag.types import Turn


@dataclass(frozen=True)
class AnswerRequest:
    """One question, or several answered together; ``history``: the conversation's earlier turns."""

    questions: tuple[str, ...]
    top_k: int
    mode: RetrievalMode | None = None  # None: the configured mode
    filters: MetadataFilters | None = None
    collection_names: tuple[str, ...] | None = None  # None: every collection
    history: tuple[Turn, ...] = ()
    options: GenerationOptions = GenerationOptions()

    @classmethod
    def of(
        cls,
        question: str | Sequence[str],
        top_k: int,
        *,
        mode: RetrievalMode | None = None,
        filters: MetadataFilters | None = None,
        collection_names: Sequence[str] | None = None,
        history: Sequence[Turn] = (),
        options: GenerationOptions = GenerationOptions(),
    ) -> AnswerRequest:
        """The request for a question or a list of them, from any sequences."""
        return cls(
            (question,) if isinstance(question, str) else tuple(question),
            top_k,
            mode,
            filters,
            None if collection_names is None else tuple(collection_names),
            tuple(history),
            options,
        )
