"""The wheel a user installs carries what a node serves: templates, Lua, static files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_static_files_templates_and_scripts(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("durable_redis-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "durable_redis_static/css/site.css",
        "durable_redis_static/favicon.ico",
        "durable_redis_static/chat/chat.js",
        "durable_redis_static/whiteboard/board.css",
        "runtime/web/templates/base.html",
        "runtime/storage/lua/commit.lua",
        "apps/chat/templates/chat.html",
        "examples/templates/counter.html",
    ):
        assert expected in names, expected
