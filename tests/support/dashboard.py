"""The shipped Grafana dashboard read as JSON: its queries, the metrics they name, and what
Grafana's provisioning needs of its structure (Grafana itself has no Debian package, so the
tests check the file; the compose test has Prometheus evaluate every query)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
GRID_COLUMNS = 24
PANEL_TYPES = {"timeseries", "stat", "gauge", "bargauge", "table", "text", "heatmap", "row"}


def boards() -> dict[str, dict[str, Any]]:
    """Every dashboard file, parsed."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def expressions(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """The runtime's metric names a PromQL expression uses (they all start with do_)."""
    return set(re.findall(r"\b(do_[a-z_]+)", expr))


def datasource_uids() -> set[str]:
    uids = set()
    for path in (PROVISIONING / "datasources").glob("*.yml"):
        uids |= {source["uid"] for source in yaml.safe_load(path.read_text())["datasources"]}
    return uids


def problems(board: dict[str, Any]) -> list[str]:
    """What would keep Grafana from showing the dashboard as meant; empty when none."""
    found = [f"missing {key!r}" for key in ("uid", "title", "panels") if not board.get(key)]
    if not isinstance(board.get("schemaVersion"), int):
        found.append("schemaVersion is not an integer")
    sources, ids, cells = datasource_uids(), set(), set()
    for panel in board.get("panels", []):
        name = f"panel {panel.get('id')} ({panel.get('title')!r})"
        if panel.get("id") in ids or not isinstance(panel.get("id"), int):
            found.append(f"{name}: its id is not a new integer")
        ids.add(panel.get("id"))
        if panel.get("type") not in PANEL_TYPES or not panel.get("title"):
            found.append(f"{name}: unknown type or no title")
        grid = panel.get("gridPos", {})
        x, y, w, h = (grid.get(k) for k in "xywh")
        if not all(isinstance(v, int) and v >= 0 for v in (x, y, w, h)) or not w or not h:
            found.append(f"{name}: gridPos {grid} is not four non-negative integers")
            continue
        if x + w > GRID_COLUMNS:
            found.append(f"{name}: wider than the grid's {GRID_COLUMNS} columns")
        cell = {(cx, cy) for cx in range(x, x + w) for cy in range(y, y + h)}
        if cell & cells:
            found.append(f"{name}: overlaps another panel")
        cells |= cell
        if panel.get("type") == "row":
            continue
        if panel.get("datasource", {}).get("uid") not in sources:
            found.append(f"{name}: its datasource is none of the provisioned {sorted(sources)}")
        targets = panel.get("targets", [])
        refs = [t.get("refId") for t in targets]
        if not targets or len(set(refs)) != len(refs) or not all(refs):
            found.append(f"{name}: no targets, or refIds {refs} not unique")
        for target in targets:
            expr = target.get("expr", "")
            if not expr.strip() or expr.count("(") != expr.count(")"):
                found.append(f"{name}: expression {expr!r} is empty or unbalanced")
            if target.get("datasource", {}).get("uid", next(iter(sources), None)) not in sources:
                found.append(f"{name}: a target's datasource is not provisioned")
    return found
