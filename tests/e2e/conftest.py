"""End-to-end tests: what is tested here is a process, a browser or a real server (the service as
`faddl serve` and its supervision, fault injection, localstripe, Prometheus with promtool and the
Grafana panels, Chromium on the dashboard, a Jupyter kernel on the notebooks). Everything under
this directory is marked ``e2e``; ``pytest -m "not e2e"`` runs the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
