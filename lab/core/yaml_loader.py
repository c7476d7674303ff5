"""YAML as the lab reads it: PyYAML's safe loader, with floats written the way people write them,
and no way for a small file to grow into a large one.

PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: ``3e-4`` and ``1e5`` load as
the *strings* '3e-4' and '1e5' (hence rl-zoo's ``!!float 1e5``). YAML 1.2 and every other parser read
them as numbers, and a learning rate in a spec file is almost always written that way, so the lab's
loader adds YAML 1.2's float forms. Everything else (tags, ints, booleans, ``!!float``) is unchanged.

Anchors and aliases (``&a`` / ``*a``) are refused: nested aliases let a file of a few hundred bytes
stand for gigabytes once expanded ("billion laughs"), and a spec has no need of them. Nesting is
limited to :data:`MAX_DEPTH` levels, so a deeply nested file is an error rather than a crash of the
recursive composer.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent

MAX_DEPTH = 64
"""The deepest nesting of lists and mappings a document may have."""


class YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e5``, ``3e-4``, ``1.5E3`` and ``1.e-3`` as floats, and
    refuses anchors, aliases and nesting deeper than :data:`MAX_DEPTH`."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise ComposerError(
                None,
                None,
                f"aliases (*{event.anchor}) are not allowed: write the value out",
                event.start_mark,
            )
        if isinstance(event, (ScalarEvent, CollectionStartEvent)) and event.anchor is not None:
            raise ComposerError(
                None,
                None,
                f"anchors (&{event.anchor}) are not allowed: write the value out",
                event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(
                    None, None, f"lists and mappings nest more than {MAX_DEPTH} deep", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# Tried after PyYAML's own resolvers (an int stays an int); only exponent forms are new.
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse one YAML document (raises ``yaml.YAMLError`` on bad syntax, aliases or deep nesting)."""
    return yaml.load(text, Loader=YamlLoader)


def load_yaml_value(text: str) -> Any:
    """A ``key=value`` argument's value (``--set``, ``--kwarg``): YAML (``15``, ``true``, ``3e-4``,
    ``[1, 2]``), or the text itself when it is not valid YAML."""
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text
