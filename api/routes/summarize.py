"""POST /summarize: a summary in bagel's summarization format."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ContainerDep
from api.errors import ERROR_RESPONSES, InvalidRequest
from api.schemas import SummarizeRequest, SummarizeResponse

router = APIRouter(tags=["summaries"])


@router.post("/summarize", response_model=SummarizeResponse, responses=ERROR_RESPONSES)
async def summarize(request: SummarizeRequest, container: ContainerDep) -> SummarizeResponse:
    """Summarize the text in around `words` words; text longer than the model's
    context is summarized in pieces, then the pieces' summaries together."""
    limit = container.settings.api.max_summarize_chars
    if len(request.text) > limit:
        raise InvalidRequest(f"text is longer than {limit} characters")
    summary = await container.summarizer.summarize(request.text, request.words)
    return SummarizeResponse(summary=summary.summary, rounds=summary.rounds)
