"""Collection names: what a valid one looks like and the one used when none is given."""

from __future__ import annotations

import re

DEFAULT_COLLECTION = "default"
_VALID_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


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
