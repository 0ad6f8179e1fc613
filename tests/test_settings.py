"""Settings: the defaults of the code (``Settings()``) are the defaults of an environment that sets
nothing (``Settings.from_env()``), so a component built in code behaves as the deployed one."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from api.settings import Settings


def test_the_code_defaults_are_the_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        monkeypatch.delenv(name)
    from_env = Settings.from_env()
    in_code = Settings()
    differ = {
        f.name: (getattr(in_code, f.name), getattr(from_env, f.name))
        for f in dataclasses.fields(Settings)
        if getattr(in_code, f.name) != getattr(from_env, f.name)
    }
    assert differ == {}
    assert in_code.alert_channels["critical"] == ("console://",)


COMMANDS = [
    ["db", "upgrade"],
    ["db", "downgrade", "base"],
    ["events", "load", "events.jsonl"],
    ["export"],
    ["kpis"],
    ["replay"],
    ["token", "--user", "user_1"],
    ["worker", "--once"],
    ["alerts", "rules"],
    ["alerts", "evaluate"],
    ["simulate", "--customers", "2", "--months", "1", "--post", "http://127.0.0.1:9/api/webhooks/stripe"],
    ["serve"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_malformed_setting_is_one_line_and_exit_1(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from api.cli import main
    from api.settings import get_settings

    (tmp_path / "events.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, command, env={"RETRY_MAX_ATTEMPTS": "many", "VAR_DIR": str(tmp_path)})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("simulated ")]
    assert lines == ["Error: RETRY_MAX_ATTEMPTS must be a whole number, got 'many'"], result.output


def _readme_settings() -> dict[str, str]:
    """The README's settings table: each variable named in a row's first column -> the row's
    default column."""
    from tests.processes import ROOT

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    found: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first, default = line.split("|")[1:3]
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", first):
            found[name] = default.strip()
    return found


LIBRARY_VARIABLES = {"OTEL_EXPORTER_OTLP_ENDPOINT", "PROMETHEUS_MULTIPROC_DIR"}
"""Read by OpenTelemetry's and prometheus-client's own code; the README documents them too."""


def test_the_readme_table_names_every_setting_and_nothing_else() -> None:
    declared = {name for _, setting, _ in Settings.declared() for name in setting.env}
    documented = set(_readme_settings())
    assert sorted(declared - documented) == [], "declared but not in the README's table"
    assert sorted(documented - declared - LIBRARY_VARIABLES) == [], "in the README's table but not declared"


def test_the_readme_table_states_the_code_defaults() -> None:
    """Where the table gives a literal default (in backticks), read by the setting's own parser it
    is the code's default (an unset optional setting's default is described in words instead)."""
    documented = _readme_settings()
    wrong = {}
    for _, setting, default in Settings.declared():
        for name in setting.env:
            literal = re.fullmatch(r"`([^`]*)`", documented.get(name, ""))
            if literal is None or default is None or isinstance(default, dict):
                continue
            if setting.parse(name, literal.group(1)) != default:
                wrong[name] = (literal.group(1), default)
    assert wrong == {}
