"""Prometheus and Alertmanager configuration: valid for the real tools (Debian's `prometheus`
package: promtool; `prometheus-alertmanager`: amtool), and the alert rules' unit tests pass."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import service_missing

ROOT = Path(__file__).parents[2]
PROMETHEUS = ROOT / "prometheus"
ALERTMANAGER = ROOT / "alertmanager"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        service_missing(f"{name} is not installed (Debian: apt-get install prometheus prometheus-alertmanager)")
    assert found is not None
    return found


def run(*args: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_prometheus_config_and_rules_are_valid() -> None:
    promtool = tool("promtool")
    run(promtool, "check", "config", "prometheus.yml", cwd=PROMETHEUS)
    output = run(promtool, "check", "rules", "alerts.yml", cwd=PROMETHEUS)
    assert "16 rules found" in output


def test_alert_rules_fire_and_stay_quiet_as_specified() -> None:
    output = run(tool("promtool"), "test", "rules", "tests/alerts_test.yml", cwd=PROMETHEUS)
    assert "SUCCESS" in output


def test_every_rule_has_severity_summary_and_recommendation() -> None:
    import yaml

    rules = [
        rule for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for rule in group["rules"]
    ]
    tested = (PROMETHEUS / "tests" / "alerts_test.yml").read_text()
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "high", "medium", "low"}
        assert {"summary", "description", "recommendation"} <= set(rule["annotations"])
        assert f"alertname: {rule['alert']}" in tested, f"{rule['alert']} has no unit test"


def test_alertmanager_config_renders_and_is_valid(tmp_path: Path) -> None:
    amtool = tool("amtool")
    template = (ALERTMANAGER / "alertmanager.yml.tmpl").read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", template))
    entrypoint = (ALERTMANAGER / "entrypoint.sh").read_text()
    example = (ROOT / ".env.example").read_text()
    for name in placeholders:
        assert name in entrypoint, f"entrypoint.sh does not fill {name}"
        assert f"{name}=" in example, f".env.example does not document {name}"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "smtp_password").write_text("not-a-real-password")
    (secrets / "slack_webhook_url").write_text("https://hooks.slack.com/services/T0/B0/x")
    rendered = template.replace("/run/secrets/", f"{secrets}/")
    for name in placeholders:
        value = {"ALERT_SLACK_CHANNEL": "#alerts", "ALERT_SMTP_SMARTHOST": "smtp.example.com:587"}.get(
            name, "https://hooks.example.com/x" if name.endswith("URL") else "ops@example.com"
        )
        rendered = rendered.replace(f"${{{name}}}", value)
    config = tmp_path / "alertmanager.yml"
    config.write_text(rendered)
    output = run(amtool, "check-config", str(config))
    assert "4 receivers" in output


@pytest.mark.parametrize("severity", ["critical", "high", "medium", "low"])
def test_each_severity_has_a_route(severity: str) -> None:
    template = (ALERTMANAGER / "alertmanager.yml.tmpl").read_text()
    assert f'severity="{severity}"' in template
    assert f"receiver: {severity}" in template
