"""Bearer-token authentication: every way a token is refused, against a real JWKS over HTTP."""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.security.tokens import mint_dev_token
from api.settings import Settings
from tests.conftest import migrated_sqlite

ISSUER = "https://clerk.example.test"
AUDIENCE = "faddl-api"


class Jwks:
    """A JWKS endpoint on loopback, serving the public halves of the keys it holds."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps({"keys": [owner.public_jwk(kid) for kid in owner.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        # A short poll, so that shutdown() at teardown returns at once rather than in half a second.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def add_rsa(self, kid: str) -> rsa.RSAPrivateKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = key
        return key

    def add_ec(self, kid: str) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        self.keys[kid] = key
        return key

    def public_jwk(self, kid: str) -> dict[str, Any]:
        key = self.keys[kid]
        algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(key.public_key()))
        jwk.update(kid=kid, use="sig")
        return dict(jwk)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    yield server
    server.close()


@pytest.fixture
def settings(tmp_path: Path, jwks: Jwks, sqlite_template: Path) -> Settings:
    return migrated_sqlite(
        sqlite_template,
        tmp_path / "auth.db",
        stripe_api_key="sk_test_x",
        stripe_webhook_secrets=(),
        auth_jwks_url=jwks.url,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        rate_limits_enabled=True,
    )


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "user_a", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Any, kid: str, body: dict[str, Any], algorithm: str = "RS256") -> str:
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})


async def call(settings: Settings, token: str | None, path: str = "/api/me") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with AsyncTestClient(create_app(settings)) as client:
        return await client.get(path, headers=headers)


async def test_valid_rs256_and_es256_tokens(settings: Settings, jwks: Jwks) -> None:
    rsa_key, ec_key = jwks.add_rsa("rsa-1"), jwks.add_ec("ec-1")
    response = await call(settings, sign(rsa_key, "rsa-1", claims(metadata={"role": "admin"})))
    assert response.status_code == 200, response.text
    assert response.json() == {"user_id": "user_a", "roles": ["admin"]}
    response = await call(settings, sign(ec_key, "ec-1", claims(sub="user_b"), "ES256"))
    assert response.json() == {"user_id": "user_b", "roles": []}


def _forge_hs256_with_public_key(public_pem: bytes, body: dict[str, Any], kid: str) -> str:
    """The algorithm-confusion attack: HMAC-sign with the public key as the secret (built by hand,
    since PyJWT itself refuses to use a PEM key as an HMAC secret)."""
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + "." + b64(json.dumps(body).encode())
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "Missing bearer token"),
        ("garbage", "not a well-formed JWT"),
        ("bad_signature", "signature does not verify"),
        ("alg_none", "must be signed with RS256 or ES256"),
        ("hs256_confusion", "must be signed with RS256 or ES256"),
        ("expired", "has expired"),
        ("not_yet_valid", "not valid yet"),
        ("wrong_issuer", "another issuer"),
        ("wrong_audience", "another audience"),
        ("unknown_kid", "key the identity provider does not list"),
        ("no_subject", "lacks the `sub` claim"),
        ("es256_with_rsa_kid", "does not fit the key it names"),
        ("rs256_with_ec_kid", "does not fit the key it names"),
    ],
)
async def test_rejections_are_401_with_a_reason(settings: Settings, jwks: Jwks, case: str, message: str) -> None:
    key = jwks.add_rsa("rsa-1")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tokens: dict[str, str | None] = {
        "missing": None,
        "garbage": "not.a.jwt",
        "bad_signature": sign(other, "rsa-1", claims()),
        "alg_none": jwt.encode(claims(), None, algorithm="none", headers={"kid": "rsa-1"}),
        "hs256_confusion": _forge_hs256_with_public_key(public_pem, claims(), "rsa-1"),
        "expired": sign(key, "rsa-1", claims(exp=now - 120, iat=now - 720, nbf=now - 720)),
        "not_yet_valid": sign(key, "rsa-1", claims(nbf=now + 600, exp=now + 1200)),
        "wrong_issuer": sign(key, "rsa-1", claims(iss="https://evil.example")),
        "wrong_audience": sign(key, "rsa-1", claims(aud="someone-else")),
        "unknown_kid": sign(other, "rsa-unknown", claims()),
        "no_subject": sign(key, "rsa-1", claims(sub=None)),
        # Key-type confusion: the header names a key of another type than its algorithm's.
        "es256_with_rsa_kid": sign(ec.generate_private_key(ec.SECP256R1()), "rsa-1", claims(), "ES256"),
        "rs256_with_ec_kid": sign(other, "ec-1", claims(), "RS256"),
    }
    jwks.add_ec("ec-1")
    response = await call(settings, tokens[case])
    assert response.status_code == 401, response.text
    assert message in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_clock_skew_leeway(settings: Settings, jwks: Jwks) -> None:
    key = jwks.add_rsa("rsa-1")
    now = int(time.time())
    response = await call(settings, sign(key, "rsa-1", claims(exp=now - 10, iat=now - 600, nbf=now - 600)))
    assert response.status_code == 200  # 10 s late is within the 30 s leeway


async def test_rotated_key_is_fetched_on_an_unknown_kid(settings: Settings, jwks: Jwks) -> None:
    old = jwks.add_rsa("old")
    app = create_app(settings.__class__(**{**settings.__dict__}))
    async with AsyncTestClient(app) as client:
        first = await client.get("/api/me", headers={"Authorization": f"Bearer {sign(old, 'old', claims())}"})
        assert first.status_code == 200
        fetched = jwks.fetches
        again = await client.get("/api/me", headers={"Authorization": f"Bearer {sign(old, 'old', claims())}"})
        assert again.status_code == 200
        assert jwks.fetches == fetched  # cached
    # A new verifier (cooldown not running) picks up a key added after its first fetch.
    new = jwks.add_rsa("new")
    response = await call(settings, sign(new, "new", claims()))
    assert response.status_code == 200


async def test_admin_routes_need_the_admin_role(settings: Settings, jwks: Jwks) -> None:
    key = jwks.add_rsa("rsa-1")
    user = await call(settings, sign(key, "rsa-1", claims()), "/api/admin/events")
    assert user.status_code == 403
    assert "admin role" in user.json()["detail"]
    admin = await call(settings, sign(key, "rsa-1", claims(metadata={"role": ["admin"]})), "/api/admin/events")
    assert admin.status_code == 200
    assert admin.json() == []


async def test_public_routes_need_no_token(settings: Settings) -> None:
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.get("/api/health/live")).status_code == 200
        assert (await client.get("/api/schema/openapi.json")).status_code == 200


async def test_dev_tokens_only_in_dev_mode_and_never_with_a_jwks_url(
    tmp_path: Path, jwks: Jwks, sqlite_template: Path
) -> None:
    base = {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}", "var_dir": tmp_path / "var"}
    dev = Settings(**base, auth_dev_mode=True)
    shutil.copyfile(sqlite_template, tmp_path / "dev.db")
    token = mint_dev_token(dev, "user_dev", ["admin"])
    response = await call(dev, token)
    assert response.json() == {"user_id": "user_dev", "roles": ["admin"]}
    assert (tmp_path / "var" / "dev-auth-key.pem").stat().st_mode & 0o077 == 0
    assert (await call(Settings(**base), token)).status_code == 401  # dev mode off
    with_jwks = Settings(**base, auth_dev_mode=True, auth_jwks_url=jwks.url)
    assert not with_jwks.auth_dev_active
    response = await call(with_jwks, token)
    assert response.status_code == 401


async def test_dev_mode_key_type_confusion_is_401(tmp_path: Path, sqlite_template: Path) -> None:
    """An RS256 token naming the development (EC) key: 401 with its reason, not a 500."""
    from api.security.tokens import DEV_AUDIENCE, DEV_ISSUER, DEV_KEY_ID

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}",
        stripe_api_key="sk_test_x",
        auth_dev_mode=True,
        var_dir=tmp_path / "var",
    )
    shutil.copyfile(sqlite_template, tmp_path / "dev.db")
    mint_dev_token(settings, "user_a", [])  # creates the development key
    body = claims(iss=DEV_ISSUER, aud=DEV_AUDIENCE)
    token = sign(rsa.generate_private_key(public_exponent=65537, key_size=2048), DEV_KEY_ID, body, "RS256")
    response = await call(settings, token)
    assert response.status_code == 401, response.text
    assert "does not fit the key it names" in response.json()["detail"]
