"""GET /config: the limits a client's forms should enforce, as this service checks them.

The web page sets its fields' ``maxlength``, ``min``/``max``, defaults and the collection
name ``pattern`` from this answer instead of copying them. Each value is read from where the
service itself takes it: the running settings (question length, top_k's maximum and
default), the request schemas' field constraints (top_k's minimum, the summary's length) and
the collection-name rule in rag.collections.

No key is needed, like /health: the page asks for it before the key is known (a form should
not wait for the key dialog), and the answer holds only input rules, the same for every
caller and already public in the OpenAPI document or the settings' defaults.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from api.deps import ContainerDep
from api.schemas import AskRequest, SummarizeRequest
from rag.collections.names import COLLECTION_NAME_PATTERN, DEFAULT_COLLECTION

router = APIRouter(tags=["service"])


class TextLimit(BaseModel):
    max_length: int = Field(description="At most this many characters.")


class NumberLimits(BaseModel):
    minimum: int
    maximum: int
    default: int = Field(description="What the service uses when the field is left out.")


class NameRule(BaseModel):
    pattern: str = Field(
        description="A whole name must match this regular expression (valid in Python and in an "
        "HTML pattern attribute)."
    )
    default: str = Field(description="The collection used when none is given.")


class ConfigResponse(BaseModel):
    """The input limits of /ask, /summarize and POST /documents."""

    question: TextLimit = Field(description="/ask: the question.")
    top_k: NumberLimits = Field(description="/ask: how many chunks to retrieve.")
    summary_words: NumberLimits = Field(
        description="/summarize: the summary's target length in words."
    )
    collection_name: NameRule = Field(description="A collection's name (POST /documents, /ask).")


def _constraint(field: FieldInfo, name: str) -> Any:
    """A bound such as ``ge`` or ``le`` declared on a schema field."""
    for constraint in field.metadata:
        if hasattr(constraint, name):
            return getattr(constraint, name)
    raise LookupError(f"the field declares no {name} bound")


@router.get("/config", response_model=ConfigResponse)
async def config(container: ContainerDep) -> ConfigResponse:
    """The limits a form should enforce before sending; the service checks them all again."""
    settings = container.settings
    words = SummarizeRequest.model_fields["words"]
    return ConfigResponse(
        question=TextLimit(max_length=settings.api.max_question_chars),
        top_k=NumberLimits(
            minimum=_constraint(AskRequest.model_fields["top_k"], "ge"),
            maximum=settings.retrieval.max_top_k,
            default=settings.retrieval.default_top_k,
        ),
        summary_words=NumberLimits(
            minimum=_constraint(words, "ge"),
            maximum=_constraint(words, "le"),
            default=words.default,
        ),
        collection_name=NameRule(pattern=COLLECTION_NAME_PATTERN, default=DEFAULT_COLLECTION),
    )
