"""Filter field names and numbers: what reaches SQL's JSON paths, on a real SQLite database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from rag.retrieval.filters import FilterError, filter_clause
from rag.storage.models import Base, Collection, Document

# Every punctuation character the pattern allows, in one name each.
ALLOWED = [
    "title",
    "og:title",
    "a b",
    "a.b",
    "a,b;c",
    "a/b@c+d#e",
    "a$b%c&d",
    "a(b)'c",
    "a*b!c?d=e~f-g",
]

NON_ASCII = ["Straße", "日付"]


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as db:
        db.add(Collection(id=1, name="default"))
        db.add(
            Document(
                collection_id=1,
                source="a",
                content_hash="h",
                meta={name: "x" for name in [*ALLOWED, *NON_ASCII]} | {"n": 5},
            )
        )
        db.commit()
        yield db


@pytest.mark.parametrize("name", ALLOWED)
def test_every_allowed_field_name_works_as_a_json_path(session: Session, name: str) -> None:
    assert session.execute(select(Document.id).where(filter_clause({name: "x"}))).all() == [(1,)]


@pytest.mark.xfail(
    strict=True,
    reason="known, not from issue 18: SQLite (3.40) stores the JSON with non-ASCII keys escaped (\\u00df) "
    "and compares path labels raw, so such a key never matches there (PostgreSQL does match); no error either",
)
@pytest.mark.parametrize("name", NON_ASCII)
def test_non_ascii_field_names_match_on_sqlite(session: Session, name: str) -> None:
    assert session.execute(select(Document.id).where(filter_clause({name: "x"}))).all() == [(1,)]


@pytest.mark.parametrize(
    "name", ['a"b', 'source" OR 1=1 --', "a\\b", "", " a", "a\nb", "a\x00b", "x" * 129, "[0]"]
)
def test_other_field_names_are_refused_before_sql(name: str) -> None:
    with pytest.raises(FilterError, match="not allowed|NUL|empty"):
        filter_clause({name: "x"})


@pytest.mark.parametrize("value", [10**400, -(10**400), 2 * 10**308, float("inf"), float("nan")])
def test_numbers_beyond_a_float_are_refused(value: float) -> None:
    with pytest.raises(FilterError, match="out of range"):
        filter_clause({"n": {"gt": value}})
    with pytest.raises(FilterError, match="out of range"):
        filter_clause({"n": {"in": [1, value]}})


def test_list_items_must_be_scalars_and_ordinary_numbers_still_match(session: Session) -> None:
    with pytest.raises(FilterError, match="strings, numbers or booleans"):
        filter_clause({"n": {"in": [1, {"a": 1}]}})
    assert session.execute(select(Document.id).where(filter_clause({"n": {"gte": 5}}))).all() == [
        (1,)
    ]
    assert session.execute(
        select(Document.id).where(filter_clause({"n": {"in": [4, 5]}}))
    ).all() == [(1,)]
