"""Answer evaluation on SQuAD v2: grounding, citations, abstention and answer quality.

Every paragraph is indexed as a document; a balanced, seeded sample of answerable
and unanswerable questions is asked through the normal answer pipeline.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evaluation.answer_metrics import QuestionOutcome, exact_match, summarize, token_f1
from rag.answering.request import AnswerRequest
from rag.answering.service import AnswerService
from rag.types import SourceDocument

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SquadQuestion:
    question: str
    source: str
    answers: list[str]  # empty for an unanswerable question


def load_squad(
    path: Path, limit: int, seed: int = 0
) -> tuple[list[SourceDocument], list[SquadQuestion]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    documents: list[SourceDocument] = []
    answerable: list[SquadQuestion] = []
    unanswerable: list[SquadQuestion] = []
    for article in data:
        for number, paragraph in enumerate(article["paragraphs"]):
            source = f"squad:{article['title']}#{number}"
            documents.append(
                SourceDocument(
                    source, paragraph["context"], {"title": article["title"], "source": source}
                )
            )
            for qa in paragraph["qas"]:
                golds = [a["text"] for a in qa.get("answers", [])]
                (unanswerable if qa.get("is_impossible") else answerable).append(
                    SquadQuestion(qa["question"], source, golds)
                )
    rng = random.Random(seed)
    half = limit // 2
    sample = rng.sample(answerable, min(half, len(answerable))) + rng.sample(
        unanswerable, min(limit - half, len(unanswerable))
    )
    return documents, sample


async def evaluate_answers(
    answers: AnswerService,
    questions: list[SquadQuestion],
    top_k: int,
    progress: Progress | None = None,
) -> dict[str, float | int]:
    outcomes = []
    for done, item in enumerate(questions, start=1):
        result = (await answers.ask(AnswerRequest.of(item.question, top_k))).answer
        cited_sources = [c.metadata.get("source") for c in result.citations]
        outcomes.append(
            QuestionOutcome(
                answerable_gold=bool(item.answers),
                abstained=not result.answerable,
                gold_source_retrieved=any(
                    s.metadata.get("source") == item.source for s in result.sources
                ),
                citations=len(cited_sources),
                citations_to_gold=sum(source == item.source for source in cited_sources),
                exact=exact_match(result.text, item.answers) if item.answers else 0.0,
                f1=token_f1(result.text, item.answers) if item.answers else 0.0,
            )
        )
        if progress:
            progress(done, len(questions))
    return summarize(outcomes)
