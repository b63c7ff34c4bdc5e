"""The package's shape: what each part exports, and that data flows one way.

`dsl` (text -> plan) imports nothing of `engine` or `connectors`; `connectors` never imports
`dsl`; only `engine/stream.py` imports faust.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["nudge.dsl", "nudge.engine", "nudge.connectors"])
def test_all_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        n
        for n, value in vars(module).items()
        if not n.startswith("_") and not inspect.ismodule(value) and n != "annotations"
    }
    assert set(module.__all__) == public
    assert sorted(module.__all__) == list(module.__all__)


def _imports(folder: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against the package folder
                    base = path.relative_to(ROOT).parent.parts[
                        : len(path.relative_to(ROOT).parent.parts) - node.level + 1
                    ]
                    top = {
                        "dsl": "nudge.dsl",
                        "engine": "nudge.engine",
                        "connectors": "nudge.connectors",
                    }
                    names.add(
                        ".".join(
                            [
                                top.get(base[0], base[0]),
                                *base[1:],
                                *([node.module] if node.module else []),
                            ]
                        )
                    )
                elif node.module:
                    names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_dsl_imports_nothing_of_the_others() -> None:
    for path, names in _imports("dsl").items():
        bad = {
            n for n in names if n.startswith(("nudge.engine", "nudge.connectors", "faust", "redis"))
        }
        assert not bad, f"{path} imports {bad}"


def test_connectors_never_import_dsl() -> None:
    for path, names in _imports("connectors").items():
        bad = {n for n in names if n.startswith("nudge.dsl")}
        assert not bad, f"{path} imports {bad}"


def test_only_the_stream_module_imports_faust() -> None:
    users = {
        path
        for folder in ("dsl", "engine", "connectors", "nudge")
        for path, names in _imports(folder).items()
        if any(n == "faust" or n.startswith("faust.") for n in names)
    }
    assert users <= {"engine/stream.py"}


def test_every_package_folder_is_installed() -> None:
    """A subpackage missing from pyproject's list would import in a checkout but not in a wheel."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    mapping = {
        "nudge": "nudge",
        "dsl": "nudge.dsl",
        "engine": "nudge.engine",
        "connectors": "nudge.connectors",
    }
    for folder, package in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            assert ".".join([package, *rel]) in listed, init
