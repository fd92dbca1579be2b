"""How well summaries keep to the requested length, on SQuAD v2 articles (several paragraphs each).

    .venv/bin/python benchmarks/summary_length.py --squad ../shared/evaldata/squad_v2_dev_cs224n/dev-v2.0.json \
        [--articles 6] [--targets 40,80,150] [--output FILE]

Runs the service's own Summarizer against the configured model (the embedded vLLM
unless RAG_LLM_BASE_URL is set) and prints one JSON object: for each target, the
words written and the share of summaries within a third of the target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def articles(path: Path, count: int, paragraphs: int = 6) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [
        "\n\n".join(p["context"] for p in article["paragraphs"][:paragraphs])
        for article in data[:count]
    ]


async def measure(texts: list[str], targets: list[int]) -> dict[str, object]:
    from api.container import build_container
    from rag.config import load_settings

    base = load_settings()
    with tempfile.TemporaryDirectory(prefix="rag-summary-") as scratch:
        settings = load_settings(data_dir=Path(scratch), database_url=None, models_dir=base.model_cache_dir.resolve(),
                                 api={"auth": "off"})  # fmt: skip
        container = await build_container(settings)
        try:
            results: dict[str, object] = {"model": settings.llm.base_url or "embedded", "texts": len(texts),
                                          "input_words_mean": round(statistics.fmean(len(t.split()) for t in texts))}  # fmt: skip
            for target in targets:
                counts = []
                for text in texts:
                    summary = await container.summarizer.summarize(text, target)
                    counts.append(len(summary.text.split()))
                within = [abs(count - target) <= target / 3 for count in counts]
                results[f"target_{target}"] = {
                    "words": counts,
                    "mean_words": round(statistics.fmean(counts), 1),
                    "within_a_third": round(sum(within) / len(within), 3),
                }
            return results
        finally:
            await container.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--squad", type=Path, required=True)
    parser.add_argument("--articles", type=int, default=6)
    parser.add_argument("--targets", default="40,80,150")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    result = asyncio.run(
        measure(articles(args.squad, args.articles), [int(t) for t in args.targets.split(",")])
    )
    from evaluation.machine import machine_info

    text = json.dumps({**result, "machine": machine_info()}, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
