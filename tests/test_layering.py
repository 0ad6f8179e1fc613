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
