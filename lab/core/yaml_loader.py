"""YAML as the lab reads it: PyYAML's safe loader, with floats written the way people write them.

PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: ``3e-4`` and ``1e5`` load as
the *strings* '3e-4' and '1e5' (hence rl-zoo's ``!!float 1e5``). YAML 1.2 and every other parser read
them as numbers, and a learning rate in a spec file is almost always written that way, so the lab's
loader adds YAML 1.2's float forms. Everything else (tags, ints, booleans, ``!!float``) is unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e5``, ``3e-4``, ``1.5E3`` and ``1.e-3`` as floats."""


# Tried after PyYAML's own resolvers (an int stays an int); only exponent forms are new.
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse one YAML document (raises ``yaml.YAMLError`` on bad syntax)."""
    return yaml.load(text, Loader=YamlLoader)


def load_yaml_value(text: str) -> Any:
    """A ``key=value`` argument's value (``--set``, ``--kwarg``): YAML (``15``, ``true``, ``3e-4``,
    ``[1, 2]``), or the text itself when it is not valid YAML."""
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text
