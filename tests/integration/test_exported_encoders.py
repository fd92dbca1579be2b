"""The int8 encoders (onnxruntime, OpenVINO) against the torch model they were exported from."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from rag.config import EmbeddingSettings
from rag.embedding.embedder import SentenceTransformersEmbedder
from rag.embedding.exported import Batch, ExportedEncoder, Runner
from rag.embedding.factory import make_embedder
from rag.embedding.onnx import QUANTIZED_FILE
from rag.embedding.openvino import EXPORT_FOLDER, MODEL_XML
from tests.conftest import MODELS_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXTS = [
    "The Aletsch Glacier is the largest glacier in the Alps.",
    "Forager honeybees dance to show where the flowers are.",
    "A sourdough starter doubles in volume within hours of feeding. "
    * 12,  # long: padding and truncation
    "短い日本語の文です。",
]
EXPORTED_FILE = {"onnx-int8": QUANTIZED_FILE, "openvino-int8": f"{EXPORT_FOLDER}/{MODEL_XML}"}


@pytest.fixture(scope="module", params=["onnx-int8", "openvino-int8"])
def encoder(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ExportedEncoder:
    # Exported from scratch into an empty folder, as on a fresh machine; two runners, so that
    # batches really run side by side even where the test machine has one core.
    settings = EmbeddingSettings(backend=request.param, workers=2, batch_tokens=64)
    embedder = make_embedder(settings, tmp_path_factory.mktemp("models"))
    assert isinstance(embedder, ExportedEncoder)
    return embedder


def test_vectors_agree_with_torch(
    encoder: ExportedEncoder, torch_embedder: SentenceTransformersEmbedder
) -> None:
    quantized, reference = encoder.embed(TEXTS), torch_embedder.embed(TEXTS)
    assert quantized.shape == reference.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-5)
    agreement = (quantized * reference).sum(axis=1)
    assert agreement.min() > 0.97, agreement
    # Same neighbours: each text is closest to its own torch vector.
    assert (np.argmax(quantized @ reference.T, axis=1) == np.arange(len(TEXTS))).all()


def test_input_order_does_not_change_vectors(encoder: ExportedEncoder) -> None:
    together = encoder.embed(TEXTS)
    reversed_order = encoder.embed(TEXTS[::-1])[::-1]
    assert np.allclose(together, reversed_order, atol=1e-5)


def test_batch_companions_barely_change_a_vector(encoder: ExportedEncoder) -> None:
    # A budget of 64 tokens puts the short texts in one batch; alone, each is its own batch.
    together = encoder.embed(TEXTS)
    alone = np.stack([encoder.embed([text])[0] for text in TEXTS])
    agreement = (together * alone).sum(axis=1)
    if encoder.backend == "openvino-int8":
        # Static quantization: scales fixed at export, so the batch does not matter at all.
        assert np.allclose(together, alone, atol=1e-5), agreement
    else:
        # Dynamic quantization scales activations per batch: a little rounding moves with it.
        assert agreement.min() > 0.98, agreement  # measured: 0.989 at worst


def test_batches_come_in_few_shapes(encoder: ExportedEncoder) -> None:
    # OpenVINO compiles and keeps kernels per input shape: every new shape costs memory.
    encoder.warm_up()
    runners = [encoder._runners.get() for _ in range(2)]
    shapes: list[tuple[int, ...]] = []

    def recording(runner: Runner) -> Runner:
        def run(batch: Batch) -> np.ndarray:
            shapes.append(batch["input_ids"].shape)
            return runner(batch)

        return run

    for runner in runners:
        encoder._runners.put(recording(runner))
    try:
        vectors = encoder.embed([" ".join(["glacier"] * n) for n in range(1, 100)])
    finally:
        for _ in range(2):
            encoder._runners.get()
        for runner in runners:
            encoder._runners.put(runner)
    assert vectors.shape == (99, 384) and np.allclose(
        np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5
    )
    lengths = {length for _, length in shapes}
    assert all(length % encoder.pad_to_multiple == 0 for length in lengths)
    if encoder.backend == "openvino-int8":
        assert len(lengths) <= 101 // 16 + 1, sorted(lengths)  # 99 lengths, 7 shapes at most


def test_concurrent_callers_get_the_vectors_of_their_own_texts(encoder: ExportedEncoder) -> None:
    expected = {text: encoder.embed([text])[0] for text in TEXTS}
    with ThreadPoolExecutor(4) as callers:
        results = list(callers.map(lambda text: encoder.embed([text])[0], TEXTS * 5))
    for text, vector in zip(TEXTS * 5, results, strict=True):
        assert float(vector @ expected[text]) > 0.9999


def test_identity_keeps_indexes_apart(
    encoder: ExportedEncoder, torch_embedder: SentenceTransformersEmbedder
) -> None:
    assert encoder.identity == f"{torch_embedder.identity}+{encoder.backend}"
    assert encoder.max_tokens == torch_embedder.max_tokens == 254
    assert encoder.token_lengths(TEXTS) == torch_embedder.token_lengths(TEXTS)
    assert (Path(encoder._cache_dir) / EXPORTED_FILE[encoder.backend]).exists()


def test_a_query_does_not_wait_for_a_bulk_embedding_under_way(encoder: ExportedEncoder) -> None:
    # Indexing while serving: the bulk call's batches are queued on the runners; a one-batch
    # call (a question) takes the next free runner instead of queueing behind all of them.
    bulk_texts = [f"Document {n}: " + TEXTS[2] for n in range(120)]  # 120 batches of one long text
    with ThreadPoolExecutor(1) as indexing:
        bulk = indexing.submit(encoder.embed, bulk_texts)
        while (
            not encoder._runners.empty() and not bulk.done()
        ):  # until the bulk call holds the runners
            pass
        question = encoder.embed([TEXTS[0]])
        assert not bulk.done()
        assert bulk.result().shape == (len(bulk_texts), 384)
    assert float(question[0] @ encoder.embed([TEXTS[0]])[0]) > 0.9999


FIRST_USE = """
import sys, threading
from pathlib import Path
from rag.config import EmbeddingSettings
from rag.embedding.factory import make_embedder

settings = EmbeddingSettings(backend=sys.argv[1], workers=2, batch_tokens=64)
embedder = make_embedder(settings, Path(sys.argv[2]))
embedder.token_lengths(["loads the runners"])
stop = threading.Event()

def chunking():  # the indexer's main thread tokenizes while the first batches are encoded
    while not stop.is_set():
        embedder.token_lengths(["a few words to tokenize"] * 20)

threads = [threading.Thread(target=chunking) for _ in range(2)]
for thread in threads:
    thread.start()
print(embedder.embed([f"Text {n} about rivers and glaciers." for n in range(64)]).shape)
stop.set()
"""


def test_first_use_from_several_threads_does_not_deadlock() -> None:
    # OpenVINO's bindings initialise their numpy API lazily; two runners starting at once in a
    # fresh process deadlocked on it about one time in three (the indexer hung; onnxruntime's
    # never did). Each fresh process here gets one chance to.
    make_embedder(EmbeddingSettings(backend="openvino-int8"), MODELS_DIR).warm_up()  # exported once
    command = [sys.executable, "-c", FIRST_USE, "openvino-int8", str(MODELS_DIR)]
    for _ in range(8):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the first embed() in a fresh process hung")
        assert done.returncode == 0 and done.stdout.splitlines()[-1] == "(64, 384)", done.stderr
