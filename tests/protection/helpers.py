"""Building an app with protection settings for a test, and reading what it recorded."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sqlalchemy import select

from api.db.engine import Database
from api.db.models import security_incidents
from api.security.tokens import mint_dev_token
from api.settings import Settings


def demo(settings: Settings, tmp_path: Path, **overrides: Any) -> Settings:
    """Demo mode (the simulator plays Stripe) with dev tokens, plus ``overrides``."""
    return dataclasses.replace(
        settings,
        stripe_api_key="",
        stripe_webhook_secrets=(),
        auth_dev_mode=True,
        var_dir=tmp_path / "var",
        **overrides,
    )


def auth(settings: Settings, user: str, roles: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(settings, user, roles or [])}"}


async def incidents(settings: Settings) -> list[dict[str, Any]]:
    db = Database(settings)
    try:
        async with db.read() as conn:
            rows = await conn.execute(select(security_incidents).order_by(security_incidents.c.id))
            return [dict(row) for row in rows.mappings()]
    finally:
        await db.dispose()
