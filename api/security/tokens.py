"""Bearer-token verification: JWTs from the identity provider (RS256/ES256 against its JWKS), or in
development, tokens minted by ``faddl token`` with a local key."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.secret_files import secret_file
from api.settings import Settings

__all__ = [
    "DEV_KEY_ID",
    "AuthError",
    "Principal",
    "TokenVerifier",
    "dev_private_key",
    "mint_dev_token",
    "roles_in",
]

ALGORITHMS = ["RS256", "ES256"]
"""Asymmetric only: ``none`` and HS256 (the algorithm-confusion attack) are refused outright."""

_KEY_TYPES: dict[str, type[Any]] = {"RS256": rsa.RSAPublicKey, "ES256": ec.EllipticCurvePublicKey}
"""The key type each algorithm verifies with; a token naming a key of another type is refused
before PyJWT sees it (it raises ``TypeError`` on the mismatch)."""

DEV_KEY_ID = "faddl-dev"
DEV_ISSUER = "faddl-dev"
DEV_AUDIENCE = "faddl"


class AuthError(Exception):
    """A token was refused; ``reason`` is a short code (metrics, logs), the message is for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user id (``sub``) and the roles the token grants."""

    user_id: str
    roles: frozenset[str] = frozenset()
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def roles_in(claims: dict[str, Any], settings: Settings) -> frozenset[str]:
    """The roles an identity's claims grant, where ``AUTH_ROLE_CLAIM`` says (the API's bearer
    tokens and the dashboard's login read them alike)."""
    return _roles(_claim(claims, settings.auth_role_claim))


def _roles(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list | tuple):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def dev_private_key(var_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The local development signing key, created (readable by this user only) on first use."""
    path = var_dir / "dev-auth-key.pem"

    def make() -> bytes:
        return ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    key = serialization.load_pem_private_key(secret_file(path, make), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise AuthError("dev_key", f"{path} is not an EC private key; delete it to make a new one.")
    return key


def mint_dev_token(settings: Settings, user_id: str, roles: list[str], minutes: int = 60) -> str:
    """A development token for ``user_id``, trusted only while ``AUTH_DEV_MODE`` is on."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "iss": settings.auth_issuer or DEV_ISSUER,
        "aud": settings.auth_audience or DEV_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + minutes * 60,
    }
    if roles:
        # Put the roles where AUTH_ROLE_CLAIM looks for them (e.g. {"metadata": {"role": ...}}).
        target = claims
        *parents, leaf = settings.auth_role_claim.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = roles[0] if len(roles) == 1 else roles
    key = dev_private_key(settings.var_dir)
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": DEV_KEY_ID})


class TokenVerifier:
    """Verifies bearer tokens for the configured identity provider (or the development key)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jwks = (
            jwt.PyJWKClient(settings.auth_jwks_url, cache_jwk_set=True, lifespan=300, timeout=5, cooldown_duration=30)
            if settings.auth_jwks_url
            else None
        )
        self._dev_key = dev_private_key(settings.var_dir).public_key() if settings.auth_dev_active else None

    @property
    def configured(self) -> bool:
        return self._jwks is not None or self._dev_key is not None

    async def _key(self, token: str, header: dict[str, Any]) -> Any:
        if self._jwks is not None:
            try:
                # The JWKS fetch is blocking network I/O: keep it off the event loop.
                signing = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            except jwt.PyJWKClientConnectionError as exc:
                raise AuthError(
                    "jwks_unreachable", "The identity provider's keys cannot be fetched right now."
                ) from exc
            except (jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:  # no such kid, or an empty key set
                raise AuthError(
                    "unknown_key", "The token is signed with a key the identity provider does not list."
                ) from exc
            return signing.key
        if header.get("kid") != DEV_KEY_ID:
            raise AuthError("unknown_key", "The token is signed with a key this service does not know.")
        return self._dev_key

    async def verify(self, token: str) -> Principal:
        """The principal a token proves, or :class:`AuthError`."""
        if not self.configured:
            raise AuthError("not_configured", "Authentication is not configured (AUTH_JWKS_URL).")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise AuthError("malformed", "The bearer token is not a well-formed JWT.") from exc
        if header.get("alg") not in ALGORITHMS:
            raise AuthError("algorithm", f"Tokens must be signed with {' or '.join(ALGORITHMS)}.")
        key = await self._key(token, header)
        if not isinstance(key, _KEY_TYPES[header["alg"]]) or (
            isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, ec.SECP256R1)
        ):
            raise AuthError("key_type", f"The token's algorithm ({header['alg']}) does not fit the key it names.")
        settings = self.settings
        issuer = settings.auth_issuer or (DEV_ISSUER if self._jwks is None else None)
        audience = settings.auth_audience or (DEV_AUDIENCE if self._jwks is None else None)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=audience,
                issuer=issuer,
                leeway=settings.auth_leeway_seconds,
                options={"require": ["exp", "sub"], "verify_aud": audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("expired", "The token has expired.") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError("not_yet_valid", "The token is not valid yet.") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("audience", "The token is for another audience.") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("issuer", "The token comes from another issuer.") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError("signature", "The token's signature does not verify.") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError("claims", f"The token lacks the `{exc.claim}` claim.") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError("invalid", "The bearer token is not valid.") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise AuthError("claims", "The token's `sub` is not a usable user id.")
        return Principal(subject, roles_in(claims, settings), claims)
