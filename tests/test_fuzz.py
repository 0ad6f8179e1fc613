"""Fuzzing with schemathesis against the service's own OpenAPI document: every operation, a
bounded number of generated requests each (valid and invalid), with a valid admin token. No
request may cause a 5xx, and every documented response must match its schema.

The schema is loaded when the module is imported (schemathesis parametrizes the test by
operation then), so the app it drives is built here, over its own temporary database."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from api.db.migrate import upgrade
from api.security.tokens import mint_dev_token
from tests.conftest import sqlite_settings

EXAMPLES_PER_OPERATION = 25

_WORKDIR = tempfile.TemporaryDirectory(prefix="faddl-fuzz-")  # removed when the test process exits
_root = Path(_WORKDIR.name)
SETTINGS = dataclasses.replace(
    sqlite_settings(_root / "fuzz.db"),
    stripe_api_key="",  # demo mode: no external calls
    stripe_webhook_secrets=(),
    auth_dev_mode=True,
    var_dir=_root / "var",
    block_after_incidents=0,  # screening still refuses; blocking would hide every route behind 403s
)
upgrade(SETTINGS)
TOKEN = mint_dev_token(SETTINGS, "fuzzer", ["admin"])
schema = schemathesis.openapi.from_asgi("/api/schema/openapi.json", create_app(SETTINGS))


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors_and_responses_match_the_schema(case: Any) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
