"""Which dbt models an incremental run rebuilds: what changed since the last successful build, and downstream.

  * the models downstream of every raw table whose fingerprint changed (pipelines/warehouse/fingerprints.py);
  * the models that read the raw layer by introspection, which dbt's graph cannot follow (every run);
  * when the dbt code changed: dbt's own `state:modified+` against the last build's manifest;
  * everything, when in doubt: `--full-refresh` (the nightly run), no previous build on this warehouse, a new
    day in the warehouse (AR aging and the reconciliation are judged "as of today"), a relation of the last
    build missing, or a comparison that fails.

Everything not rebuilt is unchanged in the warehouse, so the marts - and what the publish step copies - are
the same as a full build's on the same data (tests/test_orchestration_incremental.py compares them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

from pipelines.warehouse.state import BuildRecord

BUILDABLE = ("model", "seed", "snapshot")
INTROSPECTION = ("graph.sources", "graph.nodes", "adapter.get_relation")


@dataclass
class Plan:
    full: bool
    reason: str
    build: frozenset[str] = frozenset()  # unique ids of the models/seeds/snapshots to build (full: all)
    changed_tables: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)  # unique ids dbt's state:modified+ selected

    def unchanged(self, manifest: Mapping[str, Any]) -> list[str]:
        """The buildable nodes not rebuilt, parents before children."""
        kept = set(buildable(manifest)) - self.build
        order = TopologicalSorter({uid: set(manifest["nodes"][uid].get("depends_on", {}).get("nodes", [])) & kept
                                   for uid in kept})
        return list(order.static_order())

    def exclude(self, manifest: Mapping[str, Any]) -> list[str]:
        """dbt `--exclude` names: every buildable node not rebuilt (their tests go with them)."""
        return sorted(manifest["nodes"][uid]["name"] for uid in self.unchanged(manifest))


def buildable(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {uid: node for uid, node in manifest["nodes"].items()
            if node["resource_type"] in BUILDABLE and node["config"].get("materialized") != "ephemeral"}


def source_tables(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Source unique id -> "schema.table" of the raw table it reads."""
    return {uid: f"{s['schema']}.{s.get('identifier') or s['name']}" for uid, s in manifest["sources"].items()}


def downstream(manifest: Mapping[str, Any], start: set[str]) -> set[str]:
    """The buildable nodes downstream of `start` (dbt's `<selector>+`)."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        for child in manifest["child_map"].get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen & set(buildable(manifest))


def full_build_reason(last: BuildRecord | None, full_refresh: bool, today: str, missing: list[str]) -> str | None:
    if full_refresh:
        return "full refresh requested"
    if last is None:
        return "no previous build on this warehouse"
    if last.built_on != today:
        return f"a new day since the last build on {last.built_on}: the marts judged as of today change"
    if missing:
        return f"{len(missing)} relation(s) of the last build missing, e.g. {missing[0]}"
    return None


def introspecting(manifest: Mapping[str, Any]) -> set[str]:
    """Models that read the warehouse through dbt's graph or adapter instead of ref/source (row counts per raw
    table and load, quarantine counts): dbt cannot say what they depend on, so every run rebuilds them."""
    return {uid for uid, node in buildable(manifest).items()
            if node["resource_type"] == "model" and not node.get("depends_on", {}).get("nodes")
            and any(marker in node.get("raw_code", "") for marker in INTROSPECTION)}


def incremental_plan(manifest: Mapping[str, Any], last: BuildRecord, fingerprints: Mapping[str, str],
                     modified: set[str]) -> Plan:
    changed = sorted(t for t, fp in fingerprints.items() if last.fingerprints.get(t) != fp)
    changed_sources = {uid for uid, table in source_tables(manifest).items() if table in changed}
    always = introspecting(manifest)
    build = (downstream(manifest, changed_sources | always) | always
             | (modified & set(buildable(manifest))))
    parts = [f"{len(changed)} raw table(s) changed"] + ([f"{len(modified)} node(s) modified"] if modified else [])
    return Plan(full=False, reason=", ".join(parts), build=frozenset(build), changed_tables=changed,
                modified=sorted(modified))
