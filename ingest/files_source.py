"""Export files (bank statements, ERPNext GL exports) and the company mapping settings, into `raw_files`.

Files are dropped in `<inbox>/<kind>/` as CSV, XLSX or Parquet and read with Polars, every column as text,
then checked against the declared schema of their kind (`KINDS`): header names match case-insensitively with
spaces and punctuation as `_`, and a few common export names are accepted as aliases. Values are parsed
here, exactly (Decimal, ISO dates), so a bad value quarantines its row and never becomes a float or a guess.
A file is loaded once, by content hash (kept in dlt state, so it is committed with the load); after the load
the caller moves it to `processed/`, or to `rejected/` with `<file>.reason.txt` when it could not be read
against its schema (nothing of it is loaded) or was loaded before.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dlt
import polars as pl
from dlt.extract import DltResource

from ingest.archive import ArchiveWriter
from ingest.report import SourceRun
from ingest.tables import (
    QUARANTINE,
    Landing,
    TableSpec,
    bigint,
    boolean,
    decimal,
    make_resource,
    required_text,
    text,
)
from ingest.validation import AMOUNT, CURRENCY, DATE, MISSING, UNPARSABLE, is_currency, parse_decimal, reason

SUFFIXES = (".csv", ".xlsx", ".parquet")
PROCESSED, REJECTED = "processed", "rejected"


@dataclass(frozen=True)
class Column:
    kind: str  # text | date | decimal | currency | bool
    required: bool = False
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kind:
    name: str  # the inbox folder and the table
    key: str  # primary key column
    columns: dict[str, Column]
    one_of: tuple[tuple[str, ...], ...] = ()  # groups of which at least one column must be in the header


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("bank_statement_lines", "line_id", {
        "line_id": Column("text", aliases=("transaction_id",)),
        "bank_account": Column("text", True, ("account", "iban", "account_number")),
        "booking_date": Column("date", True, ("date", "transaction_date", "posting_date")),
        "value_date": Column("date"),
        "amount": Column("decimal"),
        "credit": Column("decimal", aliases=("deposit", "paid_in")),
        "debit": Column("decimal", aliases=("withdrawal", "paid_out")),
        "currency": Column("currency", True),
        "reference": Column("text", aliases=("reference_number", "ref")),
        "description": Column("text", aliases=("details", "narrative", "memo")),
        "counterparty": Column("text", aliases=("payee", "payer", "counterparty_name")),
    }, one_of=(("amount", "credit", "debit"),)),
    Kind("erpnext_gl_export", "gl_entry", {
        "gl_entry": Column("text", True, ("name", "gl_entry_name")),
        "posting_date": Column("date", True),
        "account": Column("text", True),
        "debit": Column("decimal", True),
        "credit": Column("decimal", True),
        "currency": Column("currency", True, ("account_currency",)),
        "voucher_type": Column("text"),
        "voucher_no": Column("text"),
        "company": Column("text"),
        "is_cancelled": Column("bool"),
    }),
)}
_FILE_COLUMNS = text("source_file", "file_sha256")


def _spec(kind: Kind) -> TableSpec:
    columns: dict[str, Any] = {**required_text(kind.key), **_FILE_COLUMNS}
    for name, col in kind.columns.items():
        if name in ("credit", "debit") and kind.name == "bank_statement_lines":
            continue  # folded into `amount`
        if name != kind.key:
            columns.update({"date": {name: {"data_type": "date", "nullable": True}}, "decimal": decimal(name),
                            "bool": boolean(name)}.get(col.kind, text(name)))
    return TableSpec(kind.name, (kind.key,), columns)


LOADED_FILES = TableSpec("loaded_files", ("file_sha256",), {
    **required_text("file_sha256"), **text("kind", "file_name"), **bigint("rows", "quarantined"),
    "loaded_at": {"data_type": "timestamp", "nullable": True}})
SOURCE_COMPANIES = TableSpec("source_companies", ("source", "source_key"), {
    **required_text("source", "source_key"), **text("company_slug", "rule"),
    # a mapping removed from the settings is deleted from the table (dlt hard delete), never left stale
    "removed": {"data_type": "bool", "nullable": True, "hard_delete": True}})
TABLES = (*KINDS, LOADED_FILES.name, SOURCE_COMPANIES.name)


def table_spec(table: str) -> TableSpec:
    if table in KINDS:
        return _spec(KINDS[table])
    return {t.name: t for t in (LOADED_FILES, SOURCE_COMPANIES, QUARANTINE)}[table]


def header_name(raw: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(raw).strip().lower()).strip("_")


class FileRejected(ValueError):
    """The file as a whole cannot be read against its kind's schema; the message says why."""


@dataclass
class FileMove:
    path: Path
    folder: str  # PROCESSED | REJECTED
    reason: str = ""


@dataclass
class FilePlan:
    """What to do with each inbox file once the load has committed (moving earlier could lose a file)."""

    moves: list[FileMove] = field(default_factory=list)

    def apply(self) -> list[Path]:
        done = []
        for move in self.moves:
            if not move.path.exists():
                continue
            folder = move.path.parent / move.folder
            folder.mkdir(exist_ok=True)
            target = folder / move.path.name
            if target.exists():  # same name dropped again: keep both
                target = folder / f"{move.path.stem}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}{move.path.suffix}"
            move.path.rename(target)
            if move.reason:
                (folder / f"{target.name}.reason.txt").write_text(move.reason + "\n")
            done.append(target)
        return done


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_text_frame(path: Path) -> pl.DataFrame:
    """Every column as text: values are parsed by the schema, never guessed by the reader."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema=False)
        if suffix == ".xlsx":
            return pl.read_excel(path, engine="calamine", infer_schema_length=0)
        frame = pl.read_parquet(path)
        return frame.select(pl.all().cast(pl.String))
    except Exception as exc:  # noqa: BLE001 - any reader failure rejects the file, with its cause
        raise FileRejected(f"cannot read {path.name} as {suffix[1:].upper()}: {exc}") from exc


def _date(raw: str) -> date | None:
    value = raw.strip()
    # XLSX date cells read as text come as "YYYY-MM-DD 00:00:00"; any other time of day is not a date
    for suffix in (" 00:00:00", "T00:00:00"):
        value = value.removesuffix(suffix)
    try:
        return date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return None


def _bool(raw: str) -> bool | None:
    return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(raw.strip().lower())


def _columns(kind: Kind, header: list[str]) -> dict[str, str]:
    """Canonical column -> the file's column; raises FileRejected naming what is missing."""
    normalized: dict[str, str] = {}
    for raw in header:
        normalized.setdefault(header_name(raw), raw)
    found: dict[str, str] = {}
    for name, col in kind.columns.items():
        for candidate in (name, *col.aliases):
            if candidate in normalized:
                found[name] = normalized[candidate]
                break
    missing = [n for n, c in kind.columns.items() if c.required and n not in found]
    missing += ["/".join(group) for group in kind.one_of if not any(n in found for n in group)]
    if missing:
        raise FileRejected(f"missing column(s) {', '.join(missing)} for a {kind.name} file; "
                           f"the header has {', '.join(map(str, header)) or 'nothing'}")
    return found


def _parse_row(kind: Kind, raw: dict[str, str | None]) -> tuple[dict[str, Any], list[str]]:
    row: dict[str, Any] = {}
    problems: list[str] = []
    for name, col in kind.columns.items():
        value = raw.get(name)
        if value is None or not str(value).strip():
            if col.required:
                problems.append(reason(MISSING, name))
            row[name] = None
            continue
        value = str(value).strip()
        if col.kind == "date":
            row[name] = _date(value)
            problems += [] if row[name] is not None else [reason(DATE, name)]
        elif col.kind == "decimal":
            row[name] = parse_decimal(value.replace(",", "") if re.fullmatch(r"-?[\d,]+(\.\d+)?", value) else value)
            problems += [] if row[name] is not None else [reason(AMOUNT, name)]
        elif col.kind == "currency":
            row[name] = value.upper()
            problems += [] if is_currency(value) else [reason(CURRENCY, name)]
        elif col.kind == "bool":
            row[name] = _bool(value)
            problems += [] if row[name] is not None else [reason(UNPARSABLE, name)]
        else:
            row[name] = value
    return row, problems


def _bank_amount(row: dict[str, Any], problems: list[str]) -> None:
    credit, debit = row.pop("credit", None), row.pop("debit", None)
    if row.get("amount") is not None or reason(AMOUNT, "amount") in problems:
        return
    if credit is None and debit is None:
        if not any(p.endswith((":credit", ":debit")) for p in problems):
            problems.append(reason(MISSING, "amount"))
        return
    # split columns: an empty side is zero by the format's own meaning, not a default
    row["amount"] = (credit or 0) - (debit or 0)


def _line_id(row: dict[str, Any], seen: dict[str, int]) -> str:
    fields = [row.get(n) for n in ("bank_account", "booking_date", "value_date", "amount", "currency", "reference",
                                   "description", "counterparty")]
    basis = "|".join("" if v is None else (format(v.normalize(), "f") if hasattr(v, "normalize") else str(v))
                     for v in fields)
    seen[basis] = seen.get(basis, 0) + 1  # identical lines in one file stay distinct lines
    return "bsl_" + hashlib.sha256(f"{basis}#{seen[basis]}".encode()).hexdigest()[:24]


class _Inbox:
    def __init__(self, inbox: Path, run: SourceRun, landing: Landing, plan: FilePlan) -> None:
        self.inbox, self.run, self.landing, self.plan = inbox, run, landing, plan

    def files(self, kind: str) -> list[Path]:
        folder = self.inbox / kind
        return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) \
            if folder.is_dir() else []

    def resource(self, kind: Kind) -> DltResource:
        def read() -> Iterator[Any]:
            loaded = dlt.current.resource_state().setdefault("loaded", {})  # sha256 -> {file, at}
            for path in self.files(kind.name):
                if path.suffix.lower() not in SUFFIXES:
                    self.plan.moves.append(FileMove(path, REJECTED, f"unsupported file type {path.suffix!r}: "
                                                    f"drop {', '.join(SUFFIXES)} files"))
                    continue
                digest = sha256_file(path)
                if digest in loaded:
                    earlier = loaded[digest]
                    self.plan.moves.append(FileMove(path, REJECTED, f"already loaded: same content as "
                                                    f"{earlier['file']} (loaded {earlier['at']}); nothing loaded"))
                    self.run.note(f"files: {kind.name} duplicates skipped")
                    continue
                try:
                    rows, bad = self._parse(kind, path, digest)
                except FileRejected as exc:
                    self.plan.moves.append(FileMove(path, REJECTED, str(exc)))
                    self.run.fail(f"{kind.name}/{path.name}", str(exc))
                    continue
                yield from bad
                if rows:
                    yield self.landing.rows(kind.name, rows)
                now = datetime.now(UTC)
                yield self.landing.rows(LOADED_FILES.name, [{
                    "file_sha256": digest, "kind": kind.name, "file_name": path.name, "rows": len(rows),
                    "quarantined": len(bad), "loaded_at": now}], own_table=False)
                loaded[digest] = {"file": path.name, "at": now.isoformat(timespec="seconds")}
                self.plan.moves.append(FileMove(path, PROCESSED))
                self.run.succeeded.add(f"{kind.name}/{path.name}")

        return make_resource(_spec(kind), read, (LOADED_FILES,))

    def _parse(self, kind: Kind, path: Path, digest: str) -> tuple[list[dict[str, Any]], list[Any]]:
        frame = read_text_frame(path)
        mapping = _columns(kind, frame.columns)
        extra = {header_name(c): c for c in frame.columns if c not in mapping.values() and header_name(c)}
        rows, bad, seen = [], [], {}
        for raw_row in frame.iter_rows(named=True):
            raw = {name: raw_row[col] for name, col in mapping.items()}
            row, problems = _parse_row(kind, raw)
            if kind.name == "bank_statement_lines":
                _bank_amount(row, problems)
            row.update({name: raw_row[col] for name, col in extra.items() if name not in row})  # new fields land
            if problems:
                key = str(row.get(kind.key) or "") or f"{path.name}:{len(rows) + len(bad) + 2}"  # +2: header, 1-based
                bad.append(self.landing.quarantine(kind.name, {k: raw_row[k] for k in frame.columns}, key, problems))
                continue
            if kind.name == "bank_statement_lines" and not row.get("line_id"):
                row["line_id"] = _line_id(row, seen)
            row.update(source_file=path.name, file_sha256=digest)
            rows.append(row)
        return rows, bad


def parse_company_map(setting: str, name: str) -> dict[str, str]:
    """`key=slug,key=slug` -> {key: slug}; a key may contain `=` (the last one separates)."""
    mapping: dict[str, str] = {}
    for part in (p.strip() for p in setting.split(",") if p.strip()):
        key, sep, slug = part.rpartition("=")
        if not sep or not key.strip() or not slug.strip():
            raise ValueError(f"{name}: {part!r} is not key=company-slug")
        mapping[key.strip()] = slug.strip()
    return mapping


def _companies_resource(maps: dict[str, dict[str, str]], landing: Landing) -> DltResource:
    def read() -> Iterator[Any]:
        # only what changed since the last load: an unchanged setting rewrites nothing
        state = dlt.current.resource_state()
        before: dict[str, str] = state.get("mapping", {})
        now = {f"{source}\t{key}": slug for source, mapping in maps.items() for key, slug in mapping.items()}
        rows = [{"source": k.split("\t")[0], "source_key": k.split("\t")[1], "company_slug": slug, "rule": "setting"}
                for k, slug in sorted(now.items()) if before.get(k) != slug]
        rows += [{"source": k.split("\t")[0], "source_key": k.split("\t")[1], "removed": True}
                 for k in sorted(before) if k not in now]
        state["mapping"] = now
        if rows:
            yield landing.rows(SOURCE_COMPANIES.name, rows)

    return make_resource(SOURCE_COMPANIES, read)


@dlt.source(name="files")
def files_source(inbox: Path, company_maps: dict[str, dict[str, str]] | None = None, run: SourceRun | None = None,
                 archive: ArchiveWriter | None = None, plan: FilePlan | None = None) -> list[DltResource]:
    """One resource per file kind, plus `source_companies` (`company_maps`: {'stripe'|'erpnext': {key: slug}})."""
    run = run or SourceRun("files")
    landing = Landing(run, archive)
    reader = _Inbox(inbox, run, landing, plan if plan is not None else FilePlan())
    return [*(reader.resource(kind) for kind in KINDS.values()),
            _companies_resource(company_maps or {}, landing)]
