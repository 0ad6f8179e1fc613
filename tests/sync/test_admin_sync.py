"""``GET /api/admin/sync`` and the dashboard's line on the Stripe sync: a sync stopped by Stripe
leaves a cursor that is still walking, every run is listed with its outcome, and drift that could
not be healed (an object Stripe no longer has) is open drift until dealt with. Admin only."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.gateway.reading import StripeUnreachable
from api.security.tokens import mint_dev_token
from api.settings import Settings
from simulator.stripe_api import StripeApiServer
from tests.factories import make_event, post_event, subscription
from tests.sync.conftest import on, sync
from tests.sync.test_reconcile import reconcile


async def test_cursors_runs_and_open_drift(
    settings: Settings, tmp_path: Path, stand_in: StripeApiServer, simulated: Any
) -> None:
    settings = dataclasses.replace(on(settings, stand_in, retries=0), auth_dev_mode=True, var_dir=tmp_path / "var")
    as_of = stand_in.account.as_of
    stand_in.account.faults.down_from = 4
    with pytest.raises(StripeUnreachable):
        await sync(settings, clock=lambda: as_of)
    stand_in.account.faults.down_from = None

    admin = {"Authorization": f"Bearer {mint_dev_token(settings, 'ops', ['admin'])}"}
    user = {"Authorization": f"Bearer {mint_dev_token(settings, 'someone', [])}"}
    async with AsyncTestClient(create_app(settings)) as client:
        # A subscription Stripe never had (delivered by hand): reconciliation cannot heal it.
        ghost = make_event("customer.subscription.created", subscription("sub_ghost", "cus_ghost", user="u_ghost"))
        assert (await post_event(client, ghost)).status_code == 200
        found = await reconcile(settings, as_of)
        assert [(d.object_id, d.fields, d.healed) for d in found.drift] == [
            ("sub_ghost", {"exists": (True, False)}, False)
        ]

        assert (await client.get("/api/admin/sync", headers=user)).status_code == 403
        answer = await client.get("/api/admin/sync", headers=admin)
        assert answer.status_code == 200, answer.text
        data = answer.json()
        walking = [c["resource"] for c in data["cursors"] if c["walking"]]
        assert len(walking) == 1  # where the stopped sync will resume
        assert [(r["kind"], r["outcome"]) for r in data["runs"]] == [("reconcile", "succeeded"), ("sync", "failed")]
        assert data["runs"][1]["summary"]["error"].startswith("Stripe answered")
        assert [(d["object_id"], d["fields"]) for d in data["open_drift"]] == [("sub_ghost", {"exists": [True, False]})]
        assert set(data["last_success"]) == {"reconcile"}

        overview = (await client.get("/api/admin/dashboard", headers=admin)).json()["stripe_sync"]
        assert overview["open_drift"] == 1
        assert set(overview["last_success"]) == {"reconcile"}
