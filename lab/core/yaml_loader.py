"""YAML as the lab reads it: PyYAML's safe loader, with floats written the way people write them,
and no way for a small file to grow into a large one.

PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: ``3e-4`` and ``1e5`` load as
the *strings* '3e-4' and '1e5' (hence rl-zoo's ``!!float 1e5``). YAML 1.2 and every other parser read
them as numbers, and a learning rate in a spec file is almost always written that way, so the lab's
loader adds YAML 1.2's float forms. Everything else (tags, ints, booleans, ``!!float``) is unchanged.

Anchors and aliases (``&a`` / ``*a``) are refused: nested aliases let a file of a few hundred bytes
stand for gigabytes once expanded ("billion laughs"), and a spec has no need of them. Files written
for other tools that do use them (rl-baselines3-zoo style files, ``<<: *defaults``) are read with
``aliases=True``, which accepts them while the document, counted as if every alias were expanded,
stays under :data:`MAX_EXPANDED_NODES` values. Nesting is limited to :data:`MAX_DEPTH` levels, so a
deeply nested file is an error rather than a crash of the recursive composer.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent

MAX_DEPTH = 64
"""The deepest nesting of lists and mappings a document may have."""
MAX_EXPANDED_NODES = 100_000
"""The most values a document read with ``aliases=True`` may stand for once its aliases are expanded."""


class YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e5``, ``3e-4``, ``1.5E3`` and ``1.e-3`` as floats, and
    refuses anchors, aliases and nesting deeper than :data:`MAX_DEPTH`."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    aliases = False

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if self.aliases and isinstance(event, AliasEvent):
            return super().compose_node(parent, index)  # the anchored node itself: nothing is copied
        if isinstance(event, AliasEvent):
            raise ComposerError(
                None,
                None,
                f"aliases (*{event.anchor}) are not allowed: write the value out",
                event.start_mark,
            )
        if not self.aliases and isinstance(event, (ScalarEvent, CollectionStartEvent)) and event.anchor:
            raise ComposerError(
                None,
                None,
                f"anchors (&{event.anchor}) are not allowed: write the value out",
                event.start_mark,
            )
        if not isinstance(event, CollectionStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(
                    None, None, f"lists and mappings nest more than {MAX_DEPTH} deep", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class AliasYamlLoader(YamlLoader):
    """:class:`YamlLoader` that accepts anchors and aliases while the expanded document stays under
    :data:`MAX_EXPANDED_NODES` values (counted over the node graph, without expanding it)."""

    aliases = True

    def compose_document(self) -> Any:
        node = super().compose_document()
        if _expanded_size(node) > MAX_EXPANDED_NODES:
            raise ComposerError(
                None,
                None,
                f"its aliases expand to more than {MAX_EXPANDED_NODES:,} values",
                node.start_mark,
            )
        return node


def _expanded_size(root: Any) -> int:
    """How many nodes ``root`` stands for with every alias expanded (capped just past the bound; a
    recursive alias counts as past it), computed over the graph of distinct nodes without expanding."""
    cap = MAX_EXPANDED_NODES + 1
    sizes: dict[int, int] = {}
    visiting = {id(root)}
    stack = [(root, iter(_children(root)))]
    while stack:  # depth-first, without recursion
        node, pending = stack[-1]
        child = next(pending, None)
        if child is None:
            stack.pop()
            visiting.discard(id(node))
            sizes[id(node)] = min(cap, 1 + sum(sizes[id(c)] for c in _children(node)))
        elif id(child) in visiting:
            return cap  # an alias inside its own anchor: infinite once expanded
        elif id(child) not in sizes:
            visiting.add(id(child))
            stack.append((child, iter(_children(child))))
    return sizes[id(root)]


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


# Tried after PyYAML's own resolvers (an int stays an int); only exponent forms are new.
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str, aliases: bool = False) -> Any:
    """Parse one YAML document (raises ``yaml.YAMLError`` on bad syntax, deep nesting, and anchors or
    aliases: refused, or with ``aliases=True`` accepted up to :data:`MAX_EXPANDED_NODES` values)."""
    return yaml.load(text, Loader=AliasYamlLoader if aliases else YamlLoader)


def load_yaml_value(text: str) -> Any:
    """A ``key=value`` argument's value (``--set``, ``--kwarg``): YAML (``15``, ``true``, ``3e-4``,
    ``[1, 2]``), or the text itself when it is not valid YAML."""
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text
