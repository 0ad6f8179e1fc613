"""Definitions: how every KPI on these pages is computed (``docs/kpis.md``, shown as it is)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

DEFINITIONS = Path(__file__).parents[2] / "docs" / "kpis.md"

st.markdown(DEFINITIONS.read_text(encoding="utf-8"))
