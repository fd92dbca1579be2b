"""Exceptions raised by the pipeline; the API maps them to HTTP at one edge.

RAGError
├── ConfigurationError        bad settings or a missing model
├── IndexMismatchError        index built with another embedder or chunking
├── DocumentReadError         a file that cannot be read or parsed
├── NotFoundError             an id that does not exist
└── LLMError
    ├── LLMUnavailableError   server down, timing out or starting
    └── LLMResponseError      server answered, but not with a usable completion
"""

from __future__ import annotations


class RAGError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigurationError(RAGError):
    pass


class IndexMismatchError(RAGError):
    pass


class DocumentReadError(RAGError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[DocumentReadError], tuple[str, str]]:
        return (type(self), (self.path, self.reason))  # pickled across the reader process


class NotFoundError(RAGError):
    pass


class LLMError(RAGError):
    pass


class LLMUnavailableError(LLMError):
    def __init__(self, message: str, retry_after_s: int = 10) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LLMResponseError(LLMError):
    pass
