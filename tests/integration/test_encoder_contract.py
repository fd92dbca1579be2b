"""The contract every encoder backend meets: its vectors are sentence-transformers' fp32 vectors,
on real text (SciFact queries and abstracts), one text per call and in batches, on any CPU.

Issue 12: on CPUs with AMX or AVX512-BF16, OpenVINO ran the non-int8 layers in bf16 by default
and queries fell to cosine 0.74 against the model's own vectors while every test passed on a
CPU without bf16. Hence the floor on the vectors and, since the CPU running the tests may have
no bf16, the check of the precision the compiled model really runs in.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from evaluation.embedder_agreement import SciFactSample, agreement, scifact_sample
from evaluation.machine import cpu_summary
from rag.config import EmbeddingSettings
from rag.embedding.embedder import SentenceTransformersEmbedder
from rag.embedding.factory import make_embedder
from rag.embedding.onnx import OnnxInt8Embedder
from rag.embedding.openvino import OpenVinoInt8Embedder
from rag.protocols import Embedder, Vectors
from tests.conftest import MODELS_DIR, REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCIFACT = REPO_ROOT.parent / "shared" / "evaldata" / "scifact"


@pytest.fixture(scope="module")
def sample() -> SciFactSample:
    if not (SCIFACT / "corpus.jsonl").exists():
        pytest.skip(
            f"the encoder contract compares vectors on SciFact, expected at {SCIFACT} (BEIR format): absent"
        )
    return scifact_sample(SCIFACT, queries=100, documents=100)


@pytest.fixture(scope="module")
def reference(
    sample: SciFactSample, torch_embedder: SentenceTransformersEmbedder
) -> dict[str, Vectors]:
    return {
        "queries": torch_embedder.embed(sample.queries),
        "documents": torch_embedder.embed(sample.documents),
    }


class EncoderContract:
    """Subclassed once per backend; ``floor`` is the lowest cosine any text may have."""

    backend: ClassVar[str]
    floor: ClassVar[float]
    mean_floor: ClassVar[float]

    @pytest.fixture(scope="class")
    def encoder(self, tmp_path_factory: pytest.TempPathFactory) -> Embedder:
        # `make install` exports the default backend into the shared models dir; another is
        # exported here into a folder of its own.
        models = (
            MODELS_DIR
            if self.backend == EmbeddingSettings().backend
            else tmp_path_factory.mktemp("models")
        )
        encoder = make_embedder(EmbeddingSettings(backend=self.backend), models)  # type: ignore[arg-type]
        encoder.embed(["warm up"])
        return encoder

    @pytest.mark.parametrize("kind", ["queries", "documents"])
    @pytest.mark.parametrize("per_call", [True, False], ids=["one-per-call", "batched"])
    def test_vectors_match_fp32_sentence_transformers(
        self,
        encoder: Embedder,
        sample: SciFactSample,
        reference: dict[str, Vectors],
        kind: str,
        per_call: bool,
    ) -> None:
        texts = sample.queries if kind == "queries" else sample.documents
        measured = agreement(encoder, reference[kind], texts, per_call)
        print(
            f"{self.backend} {kind} {'one per call' if per_call else 'batched'}: {measured.as_dict()}"
        )
        assert measured.min >= self.floor and measured.mean >= self.mean_floor, measured.as_dict()


class TestOpenVinoInt8(EncoderContract):
    backend = "openvino-int8"
    # Measured on an AMD EPYC (AVX2, no VNNI or bf16): queries mean 0.9954, min 0.9902,
    # abstracts 0.9945 / 0.9898, one per call and batched alike. Issue 12 on a Xeon with AMX:
    # 0.998 / 0.995 with f32, 0.953 / 0.743 in bf16.
    floor = 0.985
    mean_floor = 0.99

    def test_compiled_model_runs_f32_whatever_the_cpu(self, encoder: Embedder) -> None:
        assert isinstance(encoder, OpenVinoInt8Embedder)
        # On a CPU with AMX/AVX512-BF16 this reads bf16 unless the encoder asks for f32.
        assert encoder.compiled_precision() == "f32"

    def test_streams_are_not_pinned_to_cores(self, encoder: Embedder) -> None:
        # Pinned, a question embedded on the core where the embedded vLLM's worker busy-polls
        # waited for it (issue 16, README "Answer overhead").
        assert isinstance(encoder, OpenVinoInt8Embedder)
        assert not encoder.pinned_to_cores()

    def test_f32_is_asked_for_on_any_cpu(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Where the CPU has no bf16 the compiled precision is f32 with or without the hint:
        # this checks the hint itself is passed (the real compile runs; it is only recorded).
        import openvino

        configs: list[dict[str, str]] = []
        compile_model = openvino.Core.compile_model

        def recording(
            core: openvino.Core, model: object, device: str, config: dict[str, str]
        ) -> object:
            configs.append(config)
            return compile_model(core, model, device, config)

        monkeypatch.setattr(openvino.Core, "compile_model", recording)
        encoder = OpenVinoInt8Embedder(
            EmbeddingSettings(workers=1), MODELS_DIR / "embedder-openvino-int8"
        )
        assert encoder.compiled_precision() == "f32"
        assert [config["INFERENCE_PRECISION_HINT"] for config in configs] == ["f32"]

    def test_the_floor_catches_bf16(
        self, sample: SciFactSample, reference: dict[str, Vectors]
    ) -> None:
        class Bf16Encoder(OpenVinoInt8Embedder):
            inference_precision = "bf16"

        encoder = Bf16Encoder(
            EmbeddingSettings(backend="openvino-int8"), MODELS_DIR / "embedder-openvino-int8"
        )
        if encoder.compiled_precision() != "bf16":
            pytest.skip(
                f"{cpu_summary()['cpu_model']} has no bf16: OpenVINO runs f32 even when asked for bf16"
            )
        measured = agreement(encoder, reference["queries"], sample.queries, per_call=True)
        cpu = cpu_summary()
        if not cpu["cpu_flags"]["amx_bf16"]:  # type: ignore[index]
            # AVX512-BF16 without AMX (an AMD EPYC, [D]) measured min 0.9952 asked for bf16: that
            # CPU's bf16 path is not lossy here, so there is nothing for the floor to catch.
            pytest.skip(
                f"{cpu['cpu_model']}: bf16 without AMX keeps agreement (min {measured.min:.4f} >= "
                f"{self.floor}); the f32 hint still applies (test_compiled_model_runs_f32_whatever_the_cpu)"
            )
        # With AMX (the Xeon of issue 12, [C]) bf16 queries fell to min 0.583.
        assert measured.min < self.floor, measured.as_dict()


class TestOnnxInt8(EncoderContract):
    backend = "onnx-int8"
    # Measured on the AMD EPYC with exact int8 matmuls: queries mean 0.9941, min 0.9905 one per
    # call, 0.9933 / 0.9892 batched (activation scales follow the batch); abstracts 0.995 / 0.992.
    # Without them (u8 x s8 summed in saturating 16 bits, AVX2 without VNNI): queries min 0.9853.
    floor = 0.988
    mean_floor = 0.99

    def test_sessions_use_exact_int8_matmuls(self, encoder: Embedder) -> None:
        assert isinstance(encoder, OnnxInt8Embedder) and encoder.sessions
        for session in encoder.sessions:
            options = session.get_session_options()
            assert options.get_session_config_entry("session.x64quantprecision") == "1"


class TestTorch(EncoderContract):
    backend = "torch"
    floor = 0.9999
    mean_floor = 0.9999


def test_batch_order_is_kept(sample: SciFactSample, reference: dict[str, Vectors]) -> None:
    # Catches a backend whose vectors are fine but land on the wrong rows (sorted batches).
    encoder = make_embedder(EmbeddingSettings(), MODELS_DIR)
    vectors = encoder.embed(sample.documents[:40])
    assert (np.argmax(vectors @ reference["documents"][:40].T, axis=1) == np.arange(40)).all()


def test_scifact_sample_is_what_the_contract_says(sample: SciFactSample) -> None:
    assert len(sample.queries) == 100 and len(sample.documents) == 100
    assert len(set(sample.documents)) == 100
    assert Path(SCIFACT).is_dir()
