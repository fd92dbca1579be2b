"""The child process that exports an int8 embedder (see ``rag.embedding.export``): it saves
the model, prints its path and exits, taking torch's export and NNCF's state with it.

    python -m rag.embedding.export_worker BACKEND MODEL_PATH TARGET
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

Exporter = Callable[[str, Path], Path]


def _exporters() -> dict[str, Exporter]:
    from rag.embedding.onnx import export_int8
    from rag.embedding.openvino import export_openvino_int8

    return {"onnx-int8": export_int8, "openvino-int8": export_openvino_int8}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in _exporters():
        print(
            f"usage: python -m rag.embedding.export_worker {{{','.join(_exporters())}}} MODEL_PATH TARGET",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    backend, model_path, target = argv
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(_exporters()[backend](model_path, Path(target)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
