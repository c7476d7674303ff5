"""The layers' import contracts (docs/design.md), read from the source of every module, lazy imports
inside functions included:

- ``envs``: gymnasium, numpy and pygame only; never torch, ``agents``, ``generative`` or ``lab``;
- the foundation (``lab.core``, ``lab.nets``): nothing above it;
- ``agents`` and ``generative``: from the lab only the foundation, and not each other;
- the application (the rest of ``lab``) may import anything.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOUNDATION = ("lab.core", "lab.nets")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, module: str | None = None) -> set[str]:
    """Every module a file imports, absolute names (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = (module or module_name(path)).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module_ = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module_)
            # ``from lab import cli`` imports lab.cli
            names.update(f"{module_}.{alias.name}" for alias in node.names)
    return names


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def layer_files(*packages: str) -> list[Path]:
    files: list[Path] = []
    for package in packages:
        files.extend(sorted((ROOT / package.replace(".", "/")).rglob("*.py")))
    return files


def forbidden(names: set[str], allowed_lab: tuple[str, ...], banned: tuple[str, ...]) -> list[str]:
    """The imports among ``names`` that break a layer's rule."""
    above = [n for n in names if within(n, ("lab",)) and n != "lab" and not within(n, allowed_lab)]
    return sorted({*above, *(n for n in names if within(n, banned))})


def test_the_foundation_exists():
    for package in FOUNDATION:
        assert (ROOT / package.replace(".", "/") / "__init__.py").is_file(), package


@pytest.mark.parametrize("path", layer_files("envs"), ids=lambda p: str(p.relative_to(ROOT)))
def test_envs_import_no_torch_and_nothing_of_the_lab(path):
    assert forbidden(imported_modules(path), (), ("torch", "agents", "generative", "lab")) == []


@pytest.mark.parametrize("path", layer_files(*FOUNDATION), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_foundation_imports_nothing_above_it(path):
    assert forbidden(imported_modules(path), FOUNDATION, ("agents", "generative")) == []


@pytest.mark.parametrize("path", layer_files("agents"), ids=lambda p: str(p.relative_to(ROOT)))
def test_agents_import_only_the_foundation(path):
    assert forbidden(imported_modules(path), FOUNDATION, ("generative",)) == []


@pytest.mark.parametrize("path", layer_files("generative"), ids=lambda p: str(p.relative_to(ROOT)))
def test_generative_models_import_only_the_foundation(path):
    assert forbidden(imported_modules(path), FOUNDATION, ("agents",)) == []


def test_the_checker_sees_lazy_relative_and_from_imports(tmp_path):
    """The rule reader itself: imports inside functions, relative ones and ``from lab import x`` count."""
    sample = tmp_path / "probe.py"
    sample.write_text(
        "import numpy\nfrom lab.nets import MLP\n"
        "def f():\n    from lab.cli import main\n    from .base import Agent\n    from lab import runs\n"
    )
    names = imported_modules(sample, "agents.probe")
    assert {"lab.cli", "agents.base", "lab.runs", "lab.nets.MLP"} <= names
    assert forbidden(names, FOUNDATION, ("generative",)) == ["lab.cli", "lab.cli.main", "lab.runs"]


def test_importing_envs_loads_no_torch():
    code = "import sys, envs, gymnasium as gym; gym.make('lab/Maze-v0'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
