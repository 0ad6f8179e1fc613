"""The analysts' notebooks run top to bottom (nbclient, a real kernel) over a simulated log, and
their own checks pass: the reconciliation explains every difference and ends at the ground truth."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.processes import ROOT, faddl_here, service_env

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    faddl_here(
        service_env(out),
        "simulate",
        "--start",
        "2025-01-01",
        "--customers",
        "120",
        "--months",
        "12",
        "--seed",
        "7",
        "--out",
        str(out),
    )
    return out


def test_there_are_the_three_notebooks() -> None:
    assert {p.stem for p in NOTEBOOKS} == {"mrr_reconciliation", "cohorts_and_churn", "failed_payment_recovery"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path, demo_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FADDL_EVENTS", str(demo_log / "events.jsonl"))
    monkeypatch.setenv("FADDL_TRUTH", str(demo_log / "truth.json"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    errors = [
        o
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors == []
