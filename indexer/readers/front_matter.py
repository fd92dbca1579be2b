"""Front matter read with a budget: YAML aliases counted, the result's size and depth checked.

PyYAML builds an alias as a shared reference, so ``l7`` of the "billion laughs"
file is small in memory until something walks it (turning it into JSON, storing
it): that walk is where gigabytes appear. The loader refuses more than
``yaml_max_aliases`` alias uses, and the metadata is validated (a walk that stops
at the size limit) before anything else touches it.
"""

from __future__ import annotations

from typing import Any

import frontmatter
import yaml
from frontmatter.default_handlers import YAMLHandler

from indexer.limits import ReadLimits
from indexer.metadata_limits import MetadataLimitError, validate_metadata


class _AliasBudgetLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no type stubs
    """The pure-Python safe loader (the C one cannot be hooked) with a count of alias uses."""

    max_aliases = 0
    aliases_seen = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > self.max_aliases:
                raise MetadataLimitError(
                    f"YAML front matter uses more than {self.max_aliases} aliases (*name); write the values "
                    "out (limit: RAG_INDEXING__YAML_MAX_ALIASES)"
                )
        return super().compose_node(parent, index)


class BoundedYAMLHandler(YAMLHandler):
    def __init__(self, max_aliases: int) -> None:
        super().__init__()
        self.max_aliases = max_aliases

    def load(self, fm: str, **kwargs: object) -> Any:
        loader = _AliasBudgetLoader(fm)
        loader.max_aliases = self.max_aliases
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()


def split_front_matter(raw: str, limits: ReadLimits) -> tuple[dict[str, Any], str]:
    """(metadata, content). Raises ``yaml.YAMLError`` (bad YAML) or ``MetadataLimitError``."""
    handler = frontmatter.detect_format(raw, frontmatter.handlers)
    if isinstance(handler, YAMLHandler):
        handler = BoundedYAMLHandler(limits.yaml_max_aliases)
    metadata, content = frontmatter.parse(raw, handler=handler)
    validate_metadata(metadata, limits.metadata)
    return dict(metadata), content
