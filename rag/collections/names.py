"""Collection names: what a valid one looks like and the one used when none is given."""

from __future__ import annotations

import re

DEFAULT_COLLECTION = "default"
# The one spelling of the rule: API schemas and the web page (through GET /config) use it too.
# The hyphen is escaped so the same text is also valid in an HTML ``pattern`` attribute
# (compiled with JavaScript's ``v`` flag, where a bare ``-`` in a class is an error).
COLLECTION_NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
_VALID_NAME = re.compile(COLLECTION_NAME_PATTERN)


class InvalidCollectionName(ValueError):
    pass


def validate_collection_name(name: str) -> str:
    """Lower-case letters, digits, ``-`` and ``_``, at most 64 characters; it names a folder."""
    if not _VALID_NAME.fullmatch(name):
        raise InvalidCollectionName(
            f"invalid collection name {name!r}: use 1-64 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name
