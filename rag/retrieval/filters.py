"""Metadata filters, turned into SQL over the documents' JSON metadata.

A filter maps a metadata field to a value (equality) or to operators::

    {"author": "Jane Doe",
     "date": {"gte": "2025-01-01", "lt": "2026-01-01"},
     "source": {"in": ["/docs/a.md", "/docs/b.md"]}}

Strings compare as text (ISO dates order correctly), numbers as numbers,
booleans as booleans. The matching chunk ids are handed to the search itself,
so top-k returns k matching chunks whenever k exist.

A field name must match ``FIELD_PATTERN``: a letter (any script), digit or ``_``,
then up to 127 of those, spaces and ``. , : ; / @ + # $ % & ( ) ' * ! ? = ~ -``.
No quote, backslash or control character can reach a JSON path. Numbers must be
finite floats (a 400-digit integer cannot be compared as one).
"""

from __future__ import annotations

import math
import operator as operator_module
import re
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, not_
from sqlalchemy.sql.elements import ColumnElement as Column

from rag.storage.models import Document

MetadataFilters = dict[str, Any]
OPERATORS = ("eq", "ne", "in", "nin", "gt", "gte", "lt", "lte")
FIELD_PATTERN = r"^\w[\w .,:;/@+#$%&()'*!?=~-]{0,127}$"
_FIELD = re.compile(FIELD_PATTERN)


class FilterError(ValueError):
    pass


def _typed(field: str, sample: Any) -> Column[Any]:
    element = Document.meta[field]
    if isinstance(sample, bool):
        return cast("Column[Any]", element.as_boolean())
    if isinstance(sample, (int, float)):
        return cast("Column[Any]", element.as_float())
    if isinstance(sample, str):
        return cast("Column[Any]", element.as_string())
    raise FilterError(
        f"filter on {field!r}: values must be strings, numbers or booleans, got {sample!r}"
    )


def check_field_name(field: str) -> None:
    if not _FIELD.fullmatch(field):
        shown = field if len(field) <= 60 else field[:60] + "…"
        raise FilterError(
            f"filter field name {shown!r} is not allowed: it must match {FIELD_PATTERN} (a letter, digit "
            "or _, then up to 127 of those, spaces and . , : ; / @ + # $ % & ( ) ' * ! ? = ~ -)"
        )


def _bindable(field: str, value: Any) -> Any:
    """Numbers as finite floats (they are compared as floats; a huge int cannot be bound), no NUL."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise FilterError(
                f"filter on {field!r}: a number is out of range (it must be a finite float)"
            )
        return number
    if isinstance(value, str) and "\x00" in value:
        raise FilterError(f"filter on {field!r}: values must not contain NUL characters")
    if not isinstance(value, (str, bool)):
        raise FilterError(
            f"filter on {field!r}: values must be strings, numbers or booleans, got {type(value).__name__}"
        )
    return value


def _condition(field: str, operator: str, value: Any) -> ColumnElement[bool]:
    if "\x00" in field:
        raise FilterError("filter field names must not contain NUL characters")
    check_field_name(field)
    if operator in ("in", "nin"):
        if not isinstance(value, list) or not value:
            raise FilterError(f"filter on {field!r}: {operator!r} needs a non-empty list")
        column = _typed(field, value[0])
        condition = column.in_([_bindable(field, item) for item in value])
        return not_(condition) if operator == "nin" else condition
    if isinstance(value, bool) and operator not in ("eq", "ne"):
        raise FilterError(f"filter on {field!r}: booleans take only eq or ne, not {operator!r}")
    compare = {
        "eq": operator_module.eq, "ne": operator_module.ne, "gt": operator_module.gt,
        "gte": operator_module.ge, "lt": operator_module.lt, "lte": operator_module.le,
    }[operator]  # fmt: skip
    return compare(_typed(field, value), _bindable(field, value))  # type: ignore[no-any-return]


def filter_clause(filters: MetadataFilters) -> ColumnElement[bool]:
    conditions = []
    for field, spec in filters.items():
        if not field:
            raise FilterError("filter field names must not be empty")
        if not isinstance(spec, dict):
            conditions.append(_condition(field, "eq", spec))
            continue
        if not spec:
            raise FilterError(f"filter on {field!r} has no operator")
        for operator, value in spec.items():
            if operator not in OPERATORS:
                raise FilterError(
                    f"filter on {field!r}: unknown operator {operator!r} (use one of {', '.join(OPERATORS)})"
                )
            conditions.append(_condition(field, operator, value))
    return and_(*conditions)
