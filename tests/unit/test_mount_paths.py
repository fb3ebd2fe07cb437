"""No app names its own mount path in code: pages and scripts take it from url_for and from
the page (``meta[name=app-base]``), so an app mounted under another name still works."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from apps import SUITE
from runtime import App

ROOT = Path(__file__).resolve().parents[2]


def _python_strings(path: Path) -> list[tuple[int, str]]:
    """String literals of a module, docstrings left out (they may describe the mount)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _script_lines(path: Path) -> list[tuple[int, str]]:
    """Lines of a script, comments left out."""
    kept = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        code = line.split("//", 1)[0] if "://" not in line else line
        if code.strip() and not code.lstrip().startswith("*"):
            kept.append((number, code))
    return kept


def hard_coded(app: App) -> list[str]:
    mount = re.compile(rf"""["'`]/{re.escape(app.name)}(/|["'`])""")
    found = []
    folder = ROOT / "apps" / app.name.replace("-", "_")
    for path in sorted(folder.rglob("*.py")) if folder.is_dir() else []:
        for number, text in _python_strings(path):
            if text == f"/{app.name}" or text.startswith(f"/{app.name}/"):
                found.append(f"{path.relative_to(ROOT)}:{number}: {text!r}")
    static = ROOT / "static" / (app.static or app.name)
    for path in sorted(static.rglob("*.js")) if static.is_dir() else []:
        for number, code in _script_lines(path):
            if mount.search(code):
                found.append(f"{path.relative_to(ROOT)}:{number}: {code.strip()}")
    return found


@pytest.mark.parametrize("app", SUITE, ids=lambda app: app.name)
def test_no_app_hard_codes_its_mount_path(app: App) -> None:
    assert hard_coded(app) == []


def test_an_app_declares_its_namespaces_once_and_uses_handles() -> None:
    from runtime import App, Binding, DurableObject
    from runtime.base.errors import ConfigurationError
    from runtime.web.app import check_unique

    rooms = Binding("room")

    class Room(DurableObject):
        pass

    app = App(name="a", title="A", objects={rooms: Room})
    assert app.namespaces == {"room": Room} and str(rooms) == "room"
    user = App(name="b", title="B", uses=[rooms])
    check_unique([app, user])  # the namespace it uses is registered by a mounted app
    with pytest.raises(ConfigurationError, match="uses namespace 'room'"):
        check_unique([user])  # ...and without it, the node refuses to start
    with pytest.raises(ConfigurationError):
        Binding("bad:name")
