"""The record of where a benchmark ran, read from this very machine."""

from __future__ import annotations

import json
from pathlib import Path

from evaluation.machine import CPU_FLAGS, machine_info, machine_label


def test_machine_info_names_the_cpu_its_flags_cores_and_libraries() -> None:
    info = machine_info()
    json.dumps(info)  # goes into benchmark JSON as it is
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        model = next(
            line.split(":", 1)[1].strip()
            for line in text.splitlines()
            if line.startswith("model name")
        )
        flags = set(
            next(
                line.split(":", 1)[1] for line in text.splitlines() if line.startswith("flags")
            ).split()
        )
        assert info["cpu_model"] == model
        assert info["cpu_flags"] == {flag: flag in flags for flag in CPU_FLAGS}
    assert isinstance(info["cores"], int) and 1 <= info["cores_usable"] <= info["cores"]  # type: ignore[operator]
    libraries = info["libraries"]
    assert isinstance(libraries, dict)
    assert (
        libraries["python"]
        and libraries["numpy"]
        and libraries["openvino"]
        and libraries["faiss-cpu"]
    )
    assert info["openvino_default_precision"] in {"f32", "bf16", "f16"}
    assert "FP32" in info["openvino_capabilities"]  # type: ignore[operator]
    if not (info["cpu_flags"]["avx512_bf16"] or info["cpu_flags"]["amx_bf16"]):  # type: ignore[index]
        assert info["openvino_default_precision"] == "f32"


def test_machine_label_says_whether_the_cpu_has_bf16() -> None:
    info = machine_info()
    flags = dict.fromkeys(CPU_FLAGS, False)
    amd = {**info, "cpu_model": "AMD EPYC", "cores": 2, "cpu_flags": flags}
    assert machine_label(amd) == "AMD EPYC, 2 cores, no AVX-512/AMX"
    xeon = {
        **amd,
        "cpu_model": "Intel Xeon",
        "cpu_flags": {**flags, "avx512_vnni": True, "avx512_bf16": True, "amx_bf16": True},
    }
    assert machine_label(xeon) == "Intel Xeon, 2 cores, avx512_vnni+avx512_bf16+amx_bf16"
