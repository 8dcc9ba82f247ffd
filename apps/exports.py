"""CSV and XLSX downloads of exactly the table a page shows (same rows, same columns, same text), so an export
never disagrees with the screen. Money is exported as the exact text shown (never a float)."""

from __future__ import annotations

import io
import re
from datetime import date, datetime
from decimal import Decimal

import pandas as pd
import streamlit as st

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = [str(v) if isinstance(v, Decimal | date | datetime) else v for v in out[col]]
    return out


def to_csv(frame: pd.DataFrame) -> bytes:
    return _plain(frame).to_csv(index=False).encode("utf-8")


def to_xlsx(frame: pd.DataFrame, sheet: str = "export") -> bytes:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="xlsxwriter") as writer:
        _plain(frame).to_excel(writer, sheet_name=re.sub(r"[^A-Za-z0-9 _-]", "", sheet)[:31] or "export",
                               index=False)
    return buffer.getvalue()


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "export"


def export_buttons(frame: pd.DataFrame, name: str, *, key: str) -> None:
    if frame.empty:
        return
    base = slug(name)
    left, right = st.columns(2)
    left.download_button("Download CSV", to_csv(frame), file_name=f"{base}.csv", mime="text/csv",
                         key=f"{key}-csv", on_click="ignore")
    right.download_button("Download XLSX", to_xlsx(frame, name), file_name=f"{base}.xlsx", mime=XLSX_MIME,
                          key=f"{key}-xlsx", on_click="ignore")
