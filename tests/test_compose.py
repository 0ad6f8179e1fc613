"""compose.yaml, checked as far as this machine allows: with `docker compose` present, its own
validation; always, the references: every service has an image or a build with a Dockerfile,
every bind-mounted file exists, every secret file has its example, every dependency and every
address the configs use names a service, every variable is documented in .env.example."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_the_stack_has_every_part() -> None:
    assert {
        "api",
        "worker",
        "postgres",
        "redis",
        "prometheus",
        "alertmanager",
        "grafana",
        "otel-collector",
        "jaeger",
    } <= set(SERVICES)
    assert SERVICES["api"]["deploy"]["replicas"] == 2
    for name in ("api", "dashboard", "postgres", "redis", "prometheus", "alertmanager", "grafana"):
        assert "healthcheck" in SERVICES[name], f"{name} has no health check"


def test_the_image_holds_what_the_services_run() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for directory in ("api", "simulator", "analytics", "dashboards"):
        assert f"COPY {directory} ./{directory}" in dockerfile
    assert SERVICES["dashboard"]["command"][:2] == ["faddl", "dashboard"]  # behind its login
    assert (ROOT / "dashboards" / "app.py").is_file()


def test_images_builds_and_mounts_exist() -> None:
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = ROOT / (service["build"] if isinstance(service["build"], str) else service["build"]["context"])
            assert (context / "Dockerfile").is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
    for secret in COMPOSE["secrets"].values():
        path = ROOT / secret["file"]
        assert path.with_name(path.name + ".example").is_file(), f"{secret['file']} has no example"


def test_references_name_services() -> None:
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on", []):  # a list or a mapping: both iterate names
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
    prometheus = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    hosts = {
        t.split(":")[0]
        for job in prometheus["scrape_configs"]
        for c in job.get("static_configs", [])
        for t in c["targets"]
    }
    hosts |= {n for job in prometheus["scrape_configs"] for c in job.get("dns_sd_configs", []) for n in c["names"]}
    hosts |= {
        t.split(":")[0]
        for a in prometheus["alerting"]["alertmanagers"]
        for c in a["static_configs"]
        for t in c["targets"]
    }
    assert hosts - {"localhost"} <= set(SERVICES)
    datasources = yaml.safe_load((ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    for source in datasources["datasources"]:
        assert re.match(r"http://([\w-]+):", source["url"]).group(1) in SERVICES  # type: ignore[union-attr]
    collector = yaml.safe_load((ROOT / "otel" / "collector.yaml").read_text())
    assert collector["exporters"]["otlp/jaeger"]["endpoint"].split(":")[0] in SERVICES
    assert SERVICES["api"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


def test_every_variable_is_documented() -> None:
    text = (ROOT / "compose.yaml").read_text()
    example = (ROOT / ".env.example").read_text()
    for name in set(re.findall(r"\$\{(\w+)", text)):
        assert re.search(rf"^{name}=", example, re.MULTILINE), f"{name} is not in .env.example"


def test_docker_compose_accepts_it(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose plugin is not installed here; the checks above stand in for it")
    result = subprocess.run(
        [docker, "compose", "--env-file", str(ROOT / ".env.example"), "-f", str(ROOT / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
