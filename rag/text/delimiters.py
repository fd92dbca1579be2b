"""Delimiter words rewritten out of untrusted text, in every form a reader could take for one.

A delimiter (``BEGININPUT``, ``ENDCONTEXT``, ...) is found in any case, with any
separators between its two words *or between its letters* (``begin_input``,
``B E G I N I N S T R U C T I O N``, ``E.N.D.I.N.P.U.T``, zero-width characters),
and in its Unicode compatibility forms (NFKC: full-width ``ＥＮＤＩＮＰＵＴ``,
mathematical letters ``𝐄𝐍𝐃𝐈𝐍𝐏𝐔𝐓``, ...). Each one found is replaced by plain
words, ``(end of input)``; everything else is left exactly as it was, so
ordinary text reaches the prompt byte for byte.
"""

from __future__ import annotations

import re
import unicodedata

# What may stand between two letters of a delimiter: spacing, punctuation people use to
# space letters out, and invisible format characters (soft hyphen, zero-width, bidi marks).
_SEPARATOR = (
    r"[\s_\-.*·•|~+=/\\\u00ad\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0]*"
)


def _spaced(word: str) -> str:
    return _SEPARATOR.join(word)


_DELIMITER = re.compile(
    rf"(?<![A-Za-z])({_spaced('begin')}|{_spaced('end')}){_SEPARATOR}"
    rf"({_spaced('instruction')}|{_spaced('input')}|{_spaced('context')})(?![A-Za-z])",
    re.IGNORECASE,
)
_LETTERS = re.compile(r"[^a-z]")


def _plain(match: re.Match[str]) -> str:
    first = _LETTERS.sub("", match.group(1).lower())
    second = _LETTERS.sub("", match.group(2).lower())
    return f"({'start' if first == 'begin' else 'end'} of {second})"


def _compatibility_view(text: str) -> tuple[str, list[int]]:
    """``text`` with each character in its NFKC form, and for each character of that
    view the index of the original character it came from."""
    pieces: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        normalized = char if char.isascii() else unicodedata.normalize("NFKC", char)
        pieces.append(normalized)
        origin.extend([index] * len(normalized))
    return "".join(pieces), origin


def neutralize_delimiters(text: str) -> str:
    """Rewrite delimiter words so that no line can open or close a block."""
    if text.isascii():
        return _DELIMITER.sub(_plain, text)
    if not _DELIMITER.search(unicodedata.normalize("NFKC", text)) and not _DELIMITER.search(text):
        return text  # the common case: nothing to rewrite, no per-character work
    view, origin = _compatibility_view(text)
    parts: list[str] = []
    kept_until = 0
    for match in _DELIMITER.finditer(view):
        start, end = origin[match.start()], origin[match.end() - 1] + 1
        if start < kept_until:
            continue
        parts += [text[kept_until:start], _plain(match)]
        kept_until = end
    parts.append(text[kept_until:])
    return "".join(parts)
