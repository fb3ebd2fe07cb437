"""The runtime's shape, checked against the code: the module picture, import cycles, the
public API's documentation, and what apps may import."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import runtime
from tests.support import modules

ROOT = Path(__file__).resolve().parents[2]

#: The one cycle docs/architecture.md explains (annotations only).
EXPLAINED = {frozenset({"env", "events", "namespace", "object"})}


def test_the_module_picture_matches_the_code() -> None:
    assert modules.documented() == modules.mermaid(), (
        "docs/architecture.md's module graph is stale: python -m tests.support.modules --write"
    )


def test_no_import_cycle_but_the_explained_one() -> None:
    assert set(modules.cycles(modules.imports())) == EXPLAINED


def test_the_explained_cycle_is_closed_only_by_type_checking_imports() -> None:
    # Without TYPE_CHECKING imports, the modules of the cycle import each other in no loop.
    runtime_only: dict[str, set[str]] = {}
    for name in sorted(next(iter(EXPLAINED))):
        tree = ast.parse((ROOT / "runtime" / f"{name}.py").read_text())
        found: set[str] = set()
        for node in tree.body:  # top-level imports only: TYPE_CHECKING blocks are `if` nodes
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
        runtime_only[name] = found & next(iter(EXPLAINED))
    graph = {k: v for k, v in runtime_only.items()}
    assert modules.cycles(graph) == []


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
