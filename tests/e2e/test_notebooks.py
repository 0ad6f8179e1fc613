"""The analysts' notebooks run top to bottom (nbclient, a real kernel) over a simulated log, and
their own checks pass: the reconciliation explains every difference and ends at the ground truth."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.processes import ROOT, faddl_here, service_env, simulate_history

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    simulate_history(service_env(out), out, customers=120, months=12, seed=7)
    return out


def test_there_are_the_three_notebooks() -> None:
    assert {p.stem for p in NOTEBOOKS} == {"mrr_reconciliation", "cohorts_and_churn", "failed_payment_recovery"}


def _execute(path: Path, working_directory: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(working_directory)}}
    NotebookClient(notebook, timeout=180, kernel_name="python3", resources=resources).execute()
    errors = [
        o
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors == []
    return notebook


def _images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for cell in notebook.cells for o in cell.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path, demo_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FADDL_EVENTS", str(demo_log / "events.jsonl"))
    monkeypatch.setenv("FADDL_TRUTH", str(demo_log / "truth.json"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # What a kernel started from a process that imported streamlit inherits: charts must still draw.
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = _execute(path, ROOT)
    assert _images(notebook) >= 1, "a chart, not only tables"
    if path.stem == "mrr_reconciliation":
        printed = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
        assert "our MRR equals the ground truth" in printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_reads_the_service_log_from_the_notebooks_directory(
    path: Path, demo_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started where Jupyter starts (``notebooks/``), with the service's settings and no events
    file: the notebook reads the log (through a fresh export), not ``var/demo/events.jsonl``."""
    env = service_env(tmp_path)
    faddl_here(env, "db", "upgrade")
    faddl_here(env, "events", "load", str(demo_log / "events.jsonl"))
    for name in ("FADDL_EVENTS", "FADDL_TRUTH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", env["DATABASE_URL"])
    monkeypatch.setenv("VAR_DIR", env["VAR_DIR"])
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    notebook = _execute(path, ROOT / "notebooks")
    printed = "".join(o.get("text", "") for o in notebook.cells[1].get("outputs", []))
    assert "Stripe events from the log at" in printed
    assert (Path(env["VAR_DIR"]) / "analytics").is_dir()
