"""Contextual RAG: retrieval, bagel-format prompts, generation and citations."""

__version__ = "0.1.0"
