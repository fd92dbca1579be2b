"""What the exported encoder backends (ONNX Runtime, OpenVINO) share: everything but the runtime.

Texts are tokenized once, batched longest first by padded-token budget, and the batches run
side by side on single-threaded runners, one per core (no per-operator thread barrier, which
costs much on small batches). Mean pooling and normalisation are those of all-MiniLM-L6-v2's
own sentence-transformers pipeline, so vectors match the torch backend's up to quantization.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from rag.config import EmbeddingSettings
from rag.embedding.batches import token_budget_batches
from rag.embedding.embedder import model_identity
from rag.protocols import Vectors

logger = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
Batch = dict[str, npt.NDArray[np.int64]]
Runner = Callable[[Batch], npt.NDArray[np.float32]]  # one padded batch -> last hidden state


def available_cores() -> int:
    """CPU cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class ExportedEncoder(ABC):
    """The Embedder protocol over a model exported for a CPU runtime; thread-safe."""

    backend: ClassVar[str]  # appended to the model's identity: indexes of two backends differ
    # Batches are padded to a multiple of this many tokens: fewer distinct input shapes, for a
    # runtime that compiles and caches kernels per shape (OpenVINO).
    pad_to_multiple: ClassVar[int] = 1

    def __init__(self, settings: EmbeddingSettings, cache_dir: Path) -> None:
        self._settings = settings
        self._cache_dir = cache_dir
        self._tokenizer: Any = None
        self._runners: queue.SimpleQueue[Runner] = queue.SimpleQueue()
        self._workers: ThreadPoolExecutor | None = None
        self._load_lock = threading.Lock()
        # A fast tokenizer is not safe to call from two threads at once ("Already borrowed").
        self._tokenizer_lock = threading.Lock()

    @abstractmethod
    def _load_runners(self, count: int) -> list[Runner]:
        """Export the model on first use (cached under the cache dir), then load ``count``
        single-threaded runners of it."""

    def warm_up(self) -> None:
        with self._load_lock:
            if self._workers is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self._settings.model_path)
            count = self._settings.workers or available_cores()
            probe = self._padded([self._tokenizer("warm up")["input_ids"]])
            for runner in self._load_runners(count):
                # One call each, here, one thread at a time: the runtimes' pybind11 bindings
                # initialise their numpy API on first use, and two threads doing that at once
                # can deadlock (seen with OpenVINO 2026.4: a static-init guard held by one
                # thread, the GIL by the other; the indexer hung in about one run out of six).
                runner(probe)
                self._runners.put(runner)
            self._workers = ThreadPoolExecutor(count, thread_name_prefix=f"{self.backend}-encoder")
            logger.info("%s encoder: %d single-threaded runners", self.backend, count)

    @property
    def identity(self) -> str:
        return f"{model_identity(self._settings.model_path)}+{self.backend}"

    @cached_property  # read once: embed() needs it on every call
    def dimension(self) -> int:
        config = json.loads((Path(self._settings.model_path) / "config.json").read_text())
        return int(config["hidden_size"])

    @cached_property
    def max_tokens(self) -> int:
        config_file = Path(self._settings.model_path) / "sentence_bert_config.json"
        window = (
            json.loads(config_file.read_text()).get("max_seq_length", 256)
            if config_file.exists()
            else 256
        )
        return int(window) - 2

    def token_lengths(self, texts: list[str]) -> list[int]:
        self.warm_up()
        with self._tokenizer_lock:
            encoded = self._tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        self.warm_up()
        with self._tokenizer_lock:
            encoded = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(pair) for pair in encoded["offset_mapping"]]

    def embed(self, texts: list[str]) -> Vectors:
        self.warm_up()
        assert self._workers is not None
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._tokenizer_lock:
            token_ids: list[list[int]] = self._tokenizer(
                texts, truncation=True, max_length=self.max_tokens + 2
            )["input_ids"]
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        padded_lengths = lengths + (-lengths % self.pad_to_multiple)
        batches = token_budget_batches(padded_lengths, self._settings.batch_tokens)
        if len(batches) == 1:
            # A query: run it here, on the next free runner, rather than queue it behind the
            # batches of a bulk embedding that may be under way (indexing while serving).
            return self._encode(token_ids)
        encoded = self._workers.map(
            lambda batch: self._encode([token_ids[i] for i in batch]), batches
        )
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for batch, batch_vectors in zip(batches, encoded, strict=True):
            vectors[batch] = batch_vectors
        return vectors

    def _padded(self, token_ids: list[list[int]]) -> Batch:
        longest = max(len(ids) for ids in token_ids)
        longest += -longest % self.pad_to_multiple
        input_ids = np.full((len(token_ids), longest), self._tokenizer.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(token_ids), longest), dtype=np.int64)
        for row, ids in enumerate(token_ids):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": np.zeros_like(input_ids),
        }

    def _encode(self, token_ids: list[list[int]]) -> Vectors:
        """One padded batch through one runner: mean-pooled, normalised vectors."""
        batch = self._padded(token_ids)
        runner = self._runners.get()
        try:
            hidden = runner(batch)
        finally:
            self._runners.put(runner)
        mask = batch["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
        normalised: Vectors = (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(
            np.float32
        )
        return normalised
