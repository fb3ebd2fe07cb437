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


# ------------------------------------------------------------------ one shape for every app

APPS = ("chat", "whiteboard", "waiting_room", "lobby")
#: What every app has (docs/tutorial.md, "The shape of an app").
PARTS = ("__init__.py", "names.py", "config.py", "effects.py", "rules.py", "routes.py")


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def classes(path: Path) -> list[ast.ClassDef]:
    return [n for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef)]


def test_every_app_has_the_same_parts_and_maps_them() -> None:
    for app in APPS:
        folder = ROOT / "apps" / app
        assert [p for p in PARTS if not (folder / p).exists()] == [], app
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
        mapped = set(re.findall(r"(\w+\.py)", doc.split("The parts:", 1)[-1]))
        modules = {p.name for p in folder.glob("*.py")} - {"__init__.py"}
        assert modules - mapped == set(), f"apps/{app}/__init__.py does not map them"


def test_objects_live_in_modules_named_after_them_and_no_two_share_a_name() -> None:
    from apps import SUITE

    seen: dict[str, str] = {}
    for app in SUITE:
        for binding, cls in app.objects.items():
            assert not isinstance(binding, str), f"{app.name}: {binding!r} is not a Binding"
            module = cls.__module__.rsplit(".", 1)[-1]
            if cls.__module__.startswith("apps."):
                assert module == snake(cls.__name__), f"{cls.__name__} is in {module}.py"
            assert cls.__name__ not in seen, f"{cls.__name__}: {app.name} and {seen[cls.__name__]}"
            seen[cls.__name__] = app.name
    rules = [
        (c.name, path.parent.name)
        for path in (ROOT / "apps").glob("*/*.py")
        for c in classes(path)
        if c.name.endswith("Rules")
    ]
    names = [name for name, _ in rules]
    assert len(names) == len(set(names)), rules
    assert {app for _, app in rules} == set(APPS)


def handles(tree: ast.Module) -> set[str]:
    """The names a module may pass to ``env.namespace``: Bindings imported from its app's
    names.py, declared in it (``X = Binding(...)``), or parameters annotated ``Binding``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "names":
            found.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            if getattr(node.value.func, "id", "") == "Binding":
                found.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.arg) and getattr(node.annotation, "id", "") == "Binding":
            found.add(node.arg)
    return found


def test_apps_reach_namespaces_through_bindings_never_by_name() -> None:
    offenders = []
    for path in sorted([*ROOT.glob("apps/**/*.py"), *ROOT.glob("examples/**/*.py")]):
        tree = ast.parse(path.read_text())
        allowed = handles(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "namespace"
            ):
                arg = node.args[0] if node.args else None
                if not (isinstance(arg, ast.Name) and arg.id in allowed):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
            declares = isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Binding"
            if declares and path.name != "names.py" and path.parent.name != "examples":
                offenders.append(
                    f"{path.relative_to(ROOT)}:{node.lineno}: a Binding not in names.py"
                )
    assert offenders == []
