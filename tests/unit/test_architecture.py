"""The runtime's shape, checked against the code: the module picture, import cycles, the
public API's documentation, and what apps may import."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import runtime
from tests.support import modules

ROOT = Path(__file__).resolve().parents[2]


def test_the_module_picture_matches_the_code() -> None:
    assert modules.documented() == modules.mermaid(), (
        "docs/architecture.md's module graph is stale: python -m tests.support.modules --write"
    )


def test_every_module_is_in_a_layer_and_imports_only_downwards() -> None:
    assert {
        p.name for p in (ROOT / "runtime").iterdir() if p.is_dir() and (p / "__init__.py").exists()
    } == set(modules.LAYERS)
    assert sorted(p.name for p in (ROOT / "runtime").glob("*.py")) == ["__init__.py", "__main__.py"]
    assert modules.upward(modules.imports()) == []


def test_no_import_cycle_over_two_modules() -> None:
    # The one there is (an object gets its env, the env hands out namespaces of objects) is
    # closed only by annotations.
    assert all(len(c) <= 2 for c in modules.cycles(modules.imports()))
    assert modules.cycles(modules.imports(top_level_only=True)) == []


def test_no_runtime_module_is_over_450_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "runtime").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 450
    }
    assert long == {}


def test_every_public_name_is_in_the_api_reference() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    documented = set(re.findall(r"^#{2,4} `([A-Za-z_]+)", text, re.MULTILINE))
    assert set(runtime.__all__) <= documented, sorted(set(runtime.__all__) - documented)
    assert documented <= set(runtime.__all__) | {"BaseSettings.from_env"}, sorted(
        documented - set(runtime.__all__)
    )


def test_apps_and_examples_import_only_the_public_api() -> None:
    offenders = []
    for path in sorted([*ROOT.glob("apps/**/*.py"), *ROOT.glob("examples/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("runtime."):
                offenders.append(f"{path.relative_to(ROOT)}: from {node.module} import ...")
            if isinstance(node, ast.Import):
                offenders += [
                    f"{path.relative_to(ROOT)}: import {a.name}"
                    for a in node.names
                    if a.name.startswith("runtime.")
                ]
    assert offenders == []


def test_apps_have_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.glob("apps/*/*.py")):
        app, name = path.parent.name, path.stem
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(f"{app}.{node.module.split('.')[0]}")
                else:
                    found.update(f"{app}.{a.name}" for a in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("apps."):
                parts = node.module.split(".")  # type: ignore[union-attr]
                if len(parts) >= 3:
                    found.add(f"{parts[1]}.{parts[2]}")
        graph[f"{app}.{name}"] = found
    known = set(graph)
    graph = {k: {v for v in vs if v in known and v != k} for k, vs in graph.items()}
    assert modules.cycles(graph) == []
