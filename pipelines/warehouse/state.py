"""What the last successful dbt build saw, kept per warehouse: the base of the next incremental run.

`<var>/dbt_state/<warehouse digest>/` holds
  manifest.json          the manifest of the last successful build (dbt's `--state` for `state:modified`)
  partial_parse.msgpack  dbt's parse cache, parsed with THIS warehouse's profile (a cache shared between
                         warehouses is invalidated by each switch: "Unable to do partial parsing because
                         profile has changed")
  build.json             the raw tables' fingerprints, the dbt code's digest and the day of that build

Keyed by the warehouse URL, so a state can never describe another warehouse; anything missing or unreadable
means "no state", and the next run builds everything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "manifest.json"
PARTIAL_PARSE = "partial_parse.msgpack"
BUILD = "build.json"
# what dbt reads to build the warehouse; target/, logs/ and packages are its output
CODE_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".py")
NOT_CODE = ("target", "logs", "dbt_packages")


@dataclass
class BuildRecord:
    run_id: str
    built_on: str  # the warehouse's current_date: the marts judged as of today (AR aging, reconciliation) change
    code_digest: str
    fingerprints: dict[str, str] = field(default_factory=dict)  # "schema.table" -> fingerprint


def code_digest(project_dir: Path) -> str:
    """One digest of every file dbt reads: equal digests mean the dbt code did not change."""
    digest = hashlib.sha256()
    for path in sorted(p for p in project_dir.rglob("*") if p.is_file() and p.suffix in CODE_SUFFIXES
                       and not set(p.relative_to(project_dir).parts) & set(NOT_CODE)):
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class DbtState:
    def __init__(self, var_dir: Path, warehouse_url: str):
        self.dir = Path(var_dir) / "dbt_state" / hashlib.sha256(warehouse_url.encode()).hexdigest()[:16]

    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST

    def last_build(self) -> BuildRecord | None:
        try:
            record = BuildRecord(**json.loads((self.dir / BUILD).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return record if self.manifest_path.exists() else None

    def save_build(self, record: BuildRecord, manifest: Path) -> None:
        """After a successful build: its manifest first, then the record that makes it the base."""
        self.dir.mkdir(parents=True, exist_ok=True)
        _replace(manifest, self.manifest_path)
        tmp = self.dir / f"{BUILD}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record.__dict__, sort_keys=True, indent=1))
        os.replace(tmp, self.dir / BUILD)

    def seed_partial_parse(self, target_path: Path) -> None:
        """Give a dbt invocation this warehouse's parse cache (dagster-dbt then leaves it alone)."""
        kept = self.dir / PARTIAL_PARSE
        if kept.exists():
            target_path.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(kept, target_path / PARTIAL_PARSE)

    def keep_partial_parse(self, target_path: Path) -> None:
        produced = Path(target_path) / PARTIAL_PARSE
        if produced.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            _replace(produced, self.dir / PARTIAL_PARSE)


def _replace(source: Path, destination: Path) -> None:
    tmp = destination.with_name(f"{destination.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, destination)
