"""The Grafana dashboards against a real Prometheus (Debian's package, loopback only) scraping a
running faddl server: every panel's query parses and runs, and the core panels return data."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import make_event, sign, subscription
from tests.processes import ROOT, faddl_here, free_port, service_env, start_server, stop, wait_ready

DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
SECRET = "whsec_dashboards"


def panels() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        found.extend((board["title"], panel) for panel in board["panels"])
    return found


def test_dashboards_are_provisioned_and_well_formed() -> None:
    assert {p.name for p in DASHBOARDS} == {"api.json", "webhooks-stripe.json", "security.json", "business.json"}
    provider = (ROOT / "grafana" / "provisioning" / "dashboards" / "faddl.yml").read_text()
    assert "/var/lib/grafana/dashboards" in provider
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    for _, panel in panels():
        assert panel["targets"], panel["title"]
        assert all(t["datasource"]["uid"] == "prometheus" for t in panel["targets"])


@pytest.fixture
def scraped_service(tmp_path: Path) -> Iterator[str]:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        from tests.conftest import service_missing

        service_missing("prometheus is not installed (Debian: apt-get install prometheus)")
    assert prometheus is not None
    env = service_env(tmp_path, STRIPE_API_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET=SECRET, METRICS_REFRESH_SECONDS="1")
    faddl_here(env, "db", "upgrade")
    api_port, prom_port = free_port(), free_port()
    api = start_server(env, api_port)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: faddl\n    static_configs: [{{targets: ['127.0.0.1:{api_port}']}}]\n"
    )
    prom = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{api_port}"
    try:
        wait_ready(base)
        traffic(base)
        yield f"http://127.0.0.1:{prom_port}"
    finally:
        stop(prom)
        stop(api)


def traffic(base: str) -> None:
    """Requests of every kind, spread over several scrapes so that rates have two samples."""
    with httpx.Client(base_url=base, timeout=10) as client:
        for round_ in range(6):
            for index in range(3):
                sub = subscription(
                    f"sub_{round_}_{index}",
                    f"cus_{round_}_{index}",
                    user=f"u{round_}{index}",
                    price="price_pro_monthly_usd",
                    # a current period: a subscription whose period ended days ago is stale, not MRR
                    period=(int(time.time()) - 10 * 86_400, int(time.time()) + 20 * 86_400),
                )
                body = json.dumps(make_event("customer.subscription.created", sub))
                client.post("/api/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body, SECRET)})
            client.get("/api/plans")
            client.get("/api/subscription")  # 401
            client.get("/api/subscription", headers={"Authorization": "Bearer not-a-jwt"})
            time.sleep(1.1)


def query(prometheus: str, expr: str) -> dict[str, Any]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body: dict[str, Any] = answer.json()
    assert answer.status_code == 200, f"{expr}: {body}"
    assert body["status"] == "success", f"{expr}: {body}"
    return body


def test_every_panel_query_runs_and_core_panels_have_data(scraped_service: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the last traffic must have been scraped twice
        up = query(scraped_service, 'count_over_time(up{job="faddl"}[1m])')["data"]["result"]
        if up and float(up[0]["value"][1]) >= 8:
            break
        time.sleep(1)
    empty_core = []
    for title, panel in panels():
        for target in panel["targets"]:
            result = query(scraped_service, target["expr"])["data"]["result"]
            if panel["description"] == "core" and not result:
                empty_core.append(f"{title} / {panel['title']}: {target['expr']}")
    assert empty_core == []
