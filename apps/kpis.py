"""KPI tiles of the executive overview: which column of `rpt_executive_kpis_month` each tile reads, how a
period of several months folds (flows add up, stocks and ratios take the period's last month), the deltas, and
the help text from the metric catalog (`dbt_project/models/**` `metrics:`). Pure functions: tests call them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml

from apps.formatting import format_amount
from apps.periods import Period, month

KPI_TABLE = "rpt_executive_kpis_month"
CATALOG_ROOT = Path(__file__).resolve().parents[1] / "dbt_project" / "models"


@dataclass(frozen=True)
class Kpi:
    key: str  # column of rpt_executive_kpis_month
    label: str
    kind: str  # money | ratio | days | count
    fold: str  # sum (a flow over the period) | last (a stock or ratio at the period's end)
    fallback_help: str
    higher_is_better: bool = True


KPIS: tuple[Kpi, ...] = (
    Kpi("revenue_net_base_minor", "Revenue", "money", "sum", "Invoiced net of credit notes, in the base currency."),
    Kpi("mrr_base_minor", "MRR", "money", "last", "Monthly recurring revenue at the end of the period."),
    Kpi("arr_base_minor", "ARR", "money", "last", "Annual recurring revenue: 12 x MRR at the end of the period."),
    Kpi("nrr_ratio", "NRR", "ratio", "last", "Net revenue retention: the opening MRR kept, expansion included."),
    Kpi("grr_ratio", "GRR", "ratio", "last", "Gross revenue retention: the opening MRR kept, expansion excluded."),
    Kpi("open_ar_base_minor", "AR", "money", "last", "Open receivables at the end of the period.", False),
    Kpi("dso_days", "DSO", "days", "last", "Days sales outstanding at the end of the period.", False),
    Kpi("collected_base_minor", "Cash collected", "money", "sum", "Payments received net of refunds."),
    Kpi("utilization_ratio", "Utilization", "ratio", "last", "Billable hours / available hours (last month)."),
    Kpi("gross_margin_ratio", "Margin", "ratio", "last", "Gross margin: (billed - time cost - expenses) / billed."),
)


@dataclass(frozen=True)
class Tile:
    kpi: Kpi
    value: str
    delta: str | None
    delta_color: str
    help: str
    spark: list[float]
    raw: int | Decimal | None


@lru_cache(maxsize=1)
def metric_catalog(root: str = str(CATALOG_ROOT)) -> dict[str, dict]:
    """Every dbt metric by name, and by the KPI columns its meta names (`published_columns` entries of
    rpt_executive_kpis_month, or `column` / `kpi_column`)."""
    found: dict[str, dict] = {}
    for path in sorted(Path(root).rglob("*.yml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue  # a broken YAML file is dbt's to report (dbt parse fails the build); the tile falls back
        for metric in doc.get("metrics") or [] if isinstance(doc, dict) else []:
            if not isinstance(metric, dict) or "name" not in metric:
                continue
            found.setdefault(str(metric["name"]), metric)
            meta = metric.get("meta") or (metric.get("config") or {}).get("meta") or {}
            columns = [meta[k] for k in ("column", "kpi_column") if meta.get(k)]
            columns += [str(c).split(".")[-1] for c in meta.get("published_columns") or []
                        if str(c).startswith(f"{KPI_TABLE}.")]
            for column in columns:
                found.setdefault(str(column), metric)
    return found


def help_text(kpi: Kpi, catalog: dict[str, dict]) -> str:
    stem = kpi.key.removesuffix("_minor").removesuffix("_base").removesuffix("_ratio").removesuffix("_days")
    metric = catalog.get(kpi.key) or catalog.get(kpi.key.removesuffix("_minor")) or catalog.get(stem)
    if metric is None:
        return kpi.fallback_help + " (not in the metric catalog yet)"
    label = metric.get("label") or metric["name"]
    meta = metric.get("meta") or (metric.get("config") or {}).get("meta") or {}
    formula = f" Formula: {meta['formula']}." if meta.get("formula") else ""
    return f"{label}: {metric.get('description') or kpi.fallback_help}{formula} (metric `{metric['name']}`)"


def _value(rows: pd.DataFrame, kpi: Kpi, period: Period) -> int | Decimal | None:
    months = set(period.month_starts())
    inside = rows[[_month(m) in months for m in rows["kpi_month"]]] if not rows.empty else rows
    if inside.empty or kpi.key not in inside:
        return None
    values = [v for v in inside.sort_values("kpi_month")[kpi.key] if not _missing(v)]
    if not values:
        return None
    if kpi.fold == "sum":
        return sum(int(v) for v in values)
    last = values[-1]
    return int(last) if kpi.kind in ("money", "count") else Decimal(str(last))


def _month(value) -> date:
    value = pd.Timestamp(value)
    return date(value.year, value.month, 1)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA or value is pd.NaT


def fmt(kpi: Kpi, value, currency: str) -> str:
    if value is None:
        return "n/a"
    if kpi.kind == "money":
        return format_amount(int(value), currency)
    if kpi.kind == "ratio":
        return f"{(Decimal(value) * 100).quantize(Decimal('0.1'))} %"
    if kpi.kind == "days":
        return f"{Decimal(value).quantize(Decimal('0.1'))} days"
    return f"{int(value):,}"


def fmt_delta(kpi: Kpi, now, before, currency: str) -> str | None:
    if now is None or before is None:
        return None
    if kpi.kind == "money":
        diff = int(now) - int(before)
        return ("+" if diff >= 0 else "-") + format_amount(abs(diff), currency)
    if kpi.kind == "ratio":
        points = ((Decimal(now) - Decimal(before)) * 100).quantize(Decimal("0.1"))
        return f"{'+' if points >= 0 else ''}{points} pts"
    if kpi.kind == "days":
        days = (Decimal(now) - Decimal(before)).quantize(Decimal("0.1"))
        return f"{'+' if days >= 0 else ''}{days} days"
    return f"{int(now) - int(before):+,}"


def tiles(rows: pd.DataFrame, period: Period, compared: Period, currency: str,
          catalog: dict[str, dict] | None = None) -> list[Tile]:
    """One tile per KPI: the period's value, the delta against the compared period, 12 months of sparkline."""
    catalog = metric_catalog() if catalog is None else catalog
    out = []
    window_start = month(period.last_day.year, period.last_day.month).shifted(-11).start  # 12 months to the end
    for kpi in KPIS:
        now, before = _value(rows, kpi, period), _value(rows, kpi, compared)
        spark = []
        if not rows.empty and kpi.key in rows:
            ordered = rows.sort_values("kpi_month")
            for month_value, v in zip(ordered["kpi_month"], ordered[kpi.key], strict=True):
                if window_start <= _month(month_value) < period.end and not _missing(v):
                    spark.append(float(v))  # a sparkline's shape only: the tile's figure stays exact
        out.append(Tile(kpi, fmt(kpi, now, currency), fmt_delta(kpi, now, before, currency),
                        "normal" if kpi.higher_is_better else "inverse", help_text(kpi, catalog), spark, now))
    return out
