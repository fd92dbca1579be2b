"""The bounded JSON loader used for every client JSON (bodies and upload metadata)."""

from __future__ import annotations

import json

import pytest

from api.safe_json import UnsafeJSON, loads_bounded, nesting_depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[", "{{{{"]', 1),  # brackets inside strings do not count
        ('["\\"[[[", "\\\\", [2]]', 2),  # nor do escaped quotes end a string early
        ('{"k\\\\": [[]]}', 3),
    ],
)
def test_nesting_depth_ignores_strings(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth
    json.loads(text)  # each case is valid JSON


def test_deep_input_is_refused_before_the_parser_sees_it() -> None:
    deep = "[" * 1_000_000 + "]" * 1_000_000  # json.loads would raise RecursionError
    with pytest.raises(UnsafeJSON, match="nested deeper than 32 levels"):
        loads_bounded(deep, 32)
    assert loads_bounded("[" * 32 + "]" * 32, 32) is not None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": NaN}', "NaN"),
        ('{"a": -Infinity}', "-Infinity"),
        ('{"a": 1e400}', "out of range"),
        ('{"a": ' + "9" * 400 + "}", "400 digits"),
        ('{"a": "\\udc00"}', "lone surrogate"),
        ('{"\\ud800": 1}', "lone surrogate"),
    ],
)
def test_values_json_cannot_carry_back_are_refused(text: str, reason: str) -> None:
    with pytest.raises(UnsafeJSON, match=reason):
        loads_bounded(text, 32)


def test_ordinary_json_is_parsed_as_json_loads_does() -> None:
    text = (
        '{"title": "Q3 \\ud83d\\ude00", "n": 12345678901234567890, "x": 1.5e300, "t": [true, null]}'
    )
    assert loads_bounded(text, 32) == json.loads(text)
    assert loads_bounded(text.encode("utf-16"), 32) == json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        loads_bounded("{broken", 32)
