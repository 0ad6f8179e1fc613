"""The architecture holds: data flows one way (Stripe object model -> log -> projections ->
analytics -> surfaces), each package importing only the layers below it, the simulator apart, and
the dashboard never reaching into the API's routes. The contracts are in ``pyproject.toml``
(import-linter); this test fails, naming the offending import, when a change breaks one."""

from __future__ import annotations

import os

import pytest
from importlinter.cli import lint_imports

from tests.processes import ROOT


def test_every_import_contract_is_kept(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    exit_code = lint_imports(config_filename=os.fspath(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert exit_code == 0, report
    assert "3 kept, 0 broken" in report


def test_one_door_to_the_log() -> None:
    """Every statement on ``subscription_events`` is in ``api/events/log.py``: no other module of
    the service, the KPI engine or the dashboard imports the table."""
    import ast

    offenders = []
    for package in ("api", "analytics", "dashboards"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in ("api/events/log.py", "api/db/models.py") or "/migrations/" in relative:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and any(
                    a.name == "subscription_events" or (node.module == "api.events.log" and a.name == "events")
                    for a in node.names
                ):
                    offenders.append(f"{relative}:{node.lineno}")
                if isinstance(node, ast.Attribute) and node.attr == "events" and getattr(node.value, "id", "") == "log":
                    offenders.append(f"{relative}:{node.lineno} (log.events)")
    assert offenders == []
