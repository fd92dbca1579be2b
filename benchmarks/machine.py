"""What a benchmark result must record about where it ran: CPU, flags, cores, libraries."""

from __future__ import annotations

import os
import platform
from importlib import metadata

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
LIBRARIES = (
    "vllm", "torch", "transformers", "openvino", "faiss-cpu", "bm25s", "numpy", "sqlalchemy", "fastapi", "uvicorn",
    "openai", "httpx",
)  # fmt: skip


def cpu_info() -> dict[str, object]:
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name") and model in ("unknown", ""):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {
        "model": model,
        "flags": {flag: flag in flags for flag in FLAGS},
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine() -> dict[str, object]:
    return {
        "cpu": cpu_info(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "note": "a 2-core machine shared by about 6 engineers at once: compare numbers within one run only",
    }
