"""Every setting of the service, read from the environment in one place.

Nothing else in the code base reads ``os.environ``: a component receives the :class:`Settings`
it needs. Secrets are held as plain strings but never appear in ``repr`` (and so never in logs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

from api.origins import origin_of

__all__ = ["DEMO_WEBHOOK_SECRET", "Settings", "get_settings", "normalise_database_url"]

_DEFAULT_SQLITE = "sqlite+aiosqlite:///./var/faddl.db"

DEMO_WEBHOOK_SECRET = "whsec_faddl_demo_not_secret"  # noqa: S105 (public on purpose)
"""Signing secret of demo mode (no ``STRIPE_API_KEY``): public by design, never accepted otherwise."""


ALERT_SEVERITIES = ("critical", "high", "medium", "low")
DEFAULT_ALERT_CHANNEL = "console://"
"""Where every severity's alerts go unless configured: the worker's own output."""


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        msg = f"{name} must be a whole number, got {raw!r}"
        raise ValueError(msg) from exc


def _env_float(name: str, default: float) -> float:
    raw = _env(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        msg = f"{name} must be a number, got {raw!r}"
        raise ValueError(msg) from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name).lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    msg = f"{name} must be one of 1/0/true/false/yes/no/on/off, got {raw!r}"
    raise ValueError(msg)


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in _env(name).split(",") if part.strip())


def _env_origins(name: str) -> tuple[str, ...]:
    origins = _env_list(name)
    for entry in origins:
        try:
            origin_of(entry)
        except ValueError as exc:
            msg = f"{name}: {entry!r} {exc}; write origins as scheme://host[:port], comma-separated."
            raise ValueError(msg) from None
    return origins


def normalise_database_url(url: str) -> str:
    """Map the URLs people write (``postgres://``, ``sqlite:///x.db``) to the async drivers we ship."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("postgresql+psycopg2://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


@dataclass(frozen=True)
class Settings:
    """The service configuration. Build it with :meth:`from_env`."""

    database_url: str = _DEFAULT_SQLITE
    """``DATABASE_URL``: SQLAlchemy URL. SQLite file under ``./var/`` by default; ``postgresql://...``
    for production (driven by asyncpg)."""

    database_pool_size: int = 10
    """``DATABASE_POOL_SIZE``: connections kept per API process (PostgreSQL)."""

    database_service_role: str = "faddl_service"
    """``DATABASE_SERVICE_ROLE``: PostgreSQL role the service assumes on every connection; it bypasses
    row-level security (webhooks write every user's rows). Empty to stay the login role."""

    database_user_role: str = "faddl_user"
    """``DATABASE_USER_ROLE``: PostgreSQL role user-bound reads run as: subject to row-level
    security keyed on ``app.user_id``, granted ``SELECT`` only, read-only."""

    database_user_url: str = field(default="", repr=False)
    """``DATABASE_USER_URL``: how user-bound reads connect, logged in as ``DATABASE_USER_ROLE``
    itself, so such a session has no other role to switch back to. Default: ``DATABASE_URL`` with
    that user and no password (enough under trust or peer authentication); with a password in it,
    ``faddl db upgrade`` sets that password on the role."""

    redis_url: str = ""
    """``REDIS_URL``: optional Redis, shared by several API processes (rate limits, idempotency)."""

    stripe_api_key: str = field(default="", repr=False)
    """``STRIPE_API_KEY``: secret key for the Stripe API. Empty: demo mode (the simulator plays Stripe)."""

    stripe_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    """``STRIPE_WEBHOOK_SECRET``: comma-separated endpoint secrets; any one verifies a delivery, so a
    secret can be rotated without downtime."""

    stripe_api_base: str = ""
    """``STRIPE_API_BASE``: base URL of a local Stripe stand-in; empty for the real API."""

    stripe_timeout_seconds: float = 10.0
    """``STRIPE_TIMEOUT_SECONDS``: time limit of one HTTP request to the Stripe API."""

    stripe_max_network_retries: int = 2
    """``STRIPE_MAX_NETWORK_RETRIES``: retries the stripe SDK makes itself on network errors, 409
    and 5xx answers (with the same idempotency key, so a retried POST never acts twice)."""

    stripe_breaker_threshold: int = 5
    """``STRIPE_BREAKER_THRESHOLD``: consecutive failed Stripe calls (network, 5xx, 429) that open
    the circuit breaker; while it is open, billing actions answer 503 at once."""

    stripe_breaker_reset_seconds: int = 30
    """``STRIPE_BREAKER_RESET_SECONDS``: how long the breaker stays open before one trial call."""

    public_base_url: str = "http://127.0.0.1:8000"
    """``PUBLIC_BASE_URL``: where browsers reach this service (demo checkout and portal pages)."""

    app_return_url: str = ""
    """``APP_RETURN_URL``: the client app page Stripe Checkout and the billing portal send the user
    back to (``?checkout=success|canceled`` or ``?portal=done`` is appended); this service's own
    small return page when empty."""

    checkout_return_origins: tuple[str, ...] = ()
    """``CHECKOUT_RETURN_ORIGINS``: comma-separated origins (``scheme://host[:port]``, e.g.
    ``https://app.example.com,myapp://checkout``) a client may send its own ``success_url``,
    ``cancel_url`` (checkout) or ``return_url`` (billing portal) on; the origin of ``APP_RETURN_URL``
    is always allowed. Any other URL is refused with 400 (no open redirect)."""

    webhook_tolerance_seconds: int = 300
    """``WEBHOOK_TOLERANCE_SECONDS``: oldest accepted ``Stripe-Signature`` timestamp, in seconds."""

    webhook_batch_max: int = 64
    """``WEBHOOK_BATCH_MAX``: most deliveries one group-commit transaction takes (see README)."""

    retry_max_attempts: int = 8
    """``RETRY_MAX_ATTEMPTS``: processing attempts of an event before it is marked ``dead``."""

    retry_base_seconds: int = 30
    """``RETRY_BASE_SECONDS``: first retry delay; each later one doubles, up to ``RETRY_MAX_SECONDS``."""

    retry_max_seconds: int = 6 * 3600
    """``RETRY_MAX_SECONDS``: longest delay between two retries of a failed event."""

    worker_poll_seconds: float = 5.0
    """``WORKER_POLL_SECONDS``: how often ``faddl worker`` looks for failed events that are due."""

    escalation_attempts: int = 3
    """``ESCALATION_ATTEMPTS``: failed payment attempts on one invoice that record an escalation event."""

    plans_file: Path | None = None
    """``PLANS_FILE``: TOML plan catalogue (names, Stripe price ids, feature limits); the built-in
    demo catalogue when unset."""

    entitlement_past_due_grace_days: int = 7
    """``ENTITLEMENT_PAST_DUE_GRACE_DAYS``: how long a ``past_due`` subscription keeps its features
    after the unpaid invoice was issued."""

    auth_jwks_url: str = ""
    """``AUTH_JWKS_URL``: JWKS of the identity provider (Clerk or any OIDC provider); bearer tokens
    are RS256/ES256 JWTs signed by one of its keys."""

    auth_issuer: str = ""
    """``AUTH_ISSUER``: required ``iss`` of tokens (unchecked when empty)."""

    auth_audience: str = ""
    """``AUTH_AUDIENCE``: required ``aud`` of tokens (unchecked when empty)."""

    auth_role_claim: str = "metadata.role"
    """``AUTH_ROLE_CLAIM``: dotted path of the claim holding the user's role(s); ``admin`` unlocks
    the admin routes."""

    auth_leeway_seconds: int = 30
    """``AUTH_LEEWAY_SECONDS``: clock skew allowed on ``exp``, ``nbf`` and ``iat``."""

    auth_dev_mode: bool = False
    """``AUTH_DEV_MODE``: trust tokens minted by ``faddl token`` with the local development key.
    On in ``make run``; ignored whenever ``AUTH_JWKS_URL`` is set."""

    rate_limits_enabled: bool = True
    """``RATE_LIMITS_ENABLED``: per-tier request limits (moving window, ``limits`` library)."""

    rate_limit_webhook: str = "100/minute"
    """``RATE_LIMIT_WEBHOOK``: Stripe deliveries per source IP (``N/second|minute|hour``)."""

    rate_limit_checkout: str = "5/minute"
    """``RATE_LIMIT_CHECKOUT``: ``POST /api/checkout`` per user."""

    rate_limit_subscription_read: str = "30/minute"
    """``RATE_LIMIT_SUBSCRIPTION_READ``: subscription and usage reads per user."""

    rate_limit_subscription_write: str = "3/minute"
    """``RATE_LIMIT_SUBSCRIPTION_WRITE``: cancel, resume, change plan and billing portal per user."""

    rate_limit_usage: str = "120/minute"
    """``RATE_LIMIT_USAGE``: ``POST /api/usage`` per user."""

    rate_limit_default: str = "60/minute"
    """``RATE_LIMIT_DEFAULT``: every other route, per user (or per IP without a token)."""

    rate_limit_fail_closed: tuple[str, ...] = ("checkout",)
    """``RATE_LIMIT_FAIL_CLOSED``: tiers refused (503) while the limit store (Redis) is unreachable;
    the others are let through. Either way it is logged and counted."""

    rate_limit_abuse_factor: int = 10
    """``RATE_LIMIT_ABUSE_FACTOR``: a key refused this many times its limit within one window is
    recorded as a security incident."""

    trusted_proxies: tuple[str, ...] = ()
    """``TRUSTED_PROXIES``: comma-separated addresses/CIDRs of reverse proxies whose
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed; empty: the peer address is the client."""

    max_body_bytes: int = 64 * 1024
    """``MAX_BODY_BYTES``: largest request body of the client API (the webhook route allows 1 MiB)."""

    max_string_length: int = 2000
    """``MAX_STRING_LENGTH``: longest string accepted in any body, query or path parameter."""

    json_max_depth: int = 64
    """``JSON_MAX_DEPTH``: deepest nesting of objects and arrays accepted in a JSON body (client API
    and webhook); Stripe's events nest about 10 deep."""

    block_after_incidents: int = 5
    """``BLOCK_AFTER_INCIDENTS``: security incidents within ``BLOCK_WINDOW_SECONDS`` that block a
    client (its IP, or its user when authenticated); 0 turns automatic blocking off."""

    block_window_seconds: int = 600
    """``BLOCK_WINDOW_SECONDS``: the window those incidents are counted in."""

    block_seconds: int = 900
    """``BLOCK_SECONDS``: how long a blocked client is refused (403)."""

    force_https: bool = False
    """``FORCE_HTTPS``: refuse plain-HTTP requests (as seen through a trusted proxy's
    ``X-Forwarded-Proto``; GET/HEAD are redirected) and send HSTS."""

    idempotency_checkout_seconds: int = 1800
    """``IDEMPOTENCY_CHECKOUT_SECONDS``: how long an ``Idempotency-Key`` of ``POST /api/checkout``
    is remembered."""

    idempotency_modify_seconds: int = 3600
    """``IDEMPOTENCY_MODIFY_SECONDS``: the same for cancel, resume, change plan and billing portal."""

    database_retry_attempts: int = 3
    """``DATABASE_RETRY_ATTEMPTS``: tries of a client-API database transaction that meets a
    transient error (connection reset, serialization failure, deadlock)."""

    slow_request_seconds: float = 1.0
    """``SLOW_REQUEST_SECONDS``: requests slower than this are logged with their trace id."""

    metrics_refresh_seconds: int = 15
    """``METRICS_REFRESH_SECONDS``: how old the database gauges on ``/metrics`` may be."""

    health_db_slow_ms: int = 250
    """``HEALTH_DB_SLOW_MS``: a database round trip slower than this makes the service degraded."""

    health_memory_percent: int = 90
    """``HEALTH_MEMORY_PERCENT``: system memory use above this makes the service degraded."""

    health_disk_percent: int = 90
    """``HEALTH_DISK_PERCENT``: disk use (of ``VAR_DIR``'s file system) above this makes it degraded."""

    health_cpu_percent: int = 95
    """``HEALTH_CPU_PERCENT``: system CPU use above this makes the service degraded."""

    health_detail_networks: tuple[str, ...] = ()
    """``HEALTH_DETAIL_NETWORKS``: networks (comma-separated CIDRs, e.g. ``10.0.0.0/8``) whose
    connections see ``GET /api/health`` with every component's details; everyone else sees the
    status and score only, unless they send an admin token."""

    health_backlog_events: int = 100
    """``HEALTH_BACKLOG_EVENTS``: failed events waiting for a retry above this make it degraded; any
    dead event does too."""

    health_external_ttl_seconds: int = 60
    """``HEALTH_EXTERNAL_TTL_SECONDS``: how long Stripe's and the identity provider's reachability
    checks are cached (never one per health call)."""

    log_level: str = "INFO"
    """``LOG_LEVEL``: DEBUG, INFO, WARNING or ERROR."""

    log_json: bool = True
    """``LOG_JSON``: JSON log lines (default) or human-readable console lines."""

    var_dir: Path = Path("./var")
    """``VAR_DIR``: where the embedded default keeps its files (SQLite database, demo data)."""

    analytics_dir: Path | None = None
    """``ANALYTICS_DIR``: the Parquet export of the event log the KPIs read (default
    ``VAR_DIR/analytics``)."""

    analytics_refresh_seconds: int = 60
    """``ANALYTICS_REFRESH_SECONDS``: how often the worker appends new events to the Parquet export,
    refreshes the KPI snapshot and evaluates the business alerts."""

    analytics_stale_grace_days: int = 3
    """``ANALYTICS_STALE_GRACE_DAYS``: days past the end of its current period after which a
    subscription still ``active`` (or ``past_due``) with no renewal seen is stale: listed as such and
    no longer counted in MRR (the grace keeps a late renewal from flickering)."""

    alert_rules_file: Path | None = None
    """``ALERT_RULES_FILE``: a TOML file of business alert rules replacing the built-in defaults
    (``analytics/alerts/rules.toml``); rules it leaves out keep their defaults."""

    alert_channels: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {severity: (DEFAULT_ALERT_CHANNEL,) for severity in ALERT_SEVERITIES}
    )
    """``ALERT_CHANNELS_CRITICAL``, ``_HIGH``, ``_MEDIUM``, ``_LOW``: apprise URLs (space or comma
    separated) each severity is delivered to, e.g. ``console:// mailtos://... slack://...
    json://host/hook``. Default: ``console://`` for every severity. URLs are secrets: never logged."""

    @property
    def analytics_path(self) -> Path:
        return self.analytics_dir or self.var_dir / "analytics"

    @classmethod
    def from_env(cls) -> Settings:
        """Read every setting from the environment, applying the defaults above."""
        return cls(
            database_url=normalise_database_url(_env("DATABASE_URL", _DEFAULT_SQLITE)),
            database_pool_size=_env_int("DATABASE_POOL_SIZE", 10),
            database_service_role=_env("DATABASE_SERVICE_ROLE", "faddl_service"),
            database_user_role=_env("DATABASE_USER_ROLE", "faddl_user"),
            database_user_url=normalise_database_url(_env("DATABASE_USER_URL")) if _env("DATABASE_USER_URL") else "",
            redis_url=_env("REDIS_URL"),
            stripe_api_key=_env("STRIPE_API_KEY"),
            stripe_webhook_secrets=_env_list("STRIPE_WEBHOOK_SECRET"),
            stripe_api_base=_env("STRIPE_API_BASE"),
            stripe_timeout_seconds=_env_float("STRIPE_TIMEOUT_SECONDS", 10.0),
            stripe_max_network_retries=_env_int("STRIPE_MAX_NETWORK_RETRIES", 2),
            stripe_breaker_threshold=_env_int("STRIPE_BREAKER_THRESHOLD", 5),
            stripe_breaker_reset_seconds=_env_int("STRIPE_BREAKER_RESET_SECONDS", 30),
            public_base_url=_env("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            app_return_url=_env("APP_RETURN_URL"),
            checkout_return_origins=_env_origins("CHECKOUT_RETURN_ORIGINS"),
            webhook_tolerance_seconds=_env_int("WEBHOOK_TOLERANCE_SECONDS", 300),
            webhook_batch_max=_env_int("WEBHOOK_BATCH_MAX", 64),
            retry_max_attempts=_env_int("RETRY_MAX_ATTEMPTS", 8),
            retry_base_seconds=_env_int("RETRY_BASE_SECONDS", 30),
            retry_max_seconds=_env_int("RETRY_MAX_SECONDS", 6 * 3600),
            worker_poll_seconds=_env_float("WORKER_POLL_SECONDS", 5.0),
            escalation_attempts=_env_int("ESCALATION_ATTEMPTS", 3),
            plans_file=Path(_env("PLANS_FILE")) if _env("PLANS_FILE") else None,
            entitlement_past_due_grace_days=_env_int("ENTITLEMENT_PAST_DUE_GRACE_DAYS", 7),
            auth_jwks_url=_env("AUTH_JWKS_URL"),
            auth_issuer=_env("AUTH_ISSUER"),
            auth_audience=_env("AUTH_AUDIENCE"),
            auth_role_claim=_env("AUTH_ROLE_CLAIM", "metadata.role"),
            auth_leeway_seconds=_env_int("AUTH_LEEWAY_SECONDS", 30),
            auth_dev_mode=_env_bool("AUTH_DEV_MODE", False),
            rate_limits_enabled=_env_bool("RATE_LIMITS_ENABLED", True),
            rate_limit_webhook=_env("RATE_LIMIT_WEBHOOK", "100/minute"),
            rate_limit_checkout=_env("RATE_LIMIT_CHECKOUT", "5/minute"),
            rate_limit_subscription_read=_env("RATE_LIMIT_SUBSCRIPTION_READ", "30/minute"),
            rate_limit_subscription_write=_env("RATE_LIMIT_SUBSCRIPTION_WRITE", "3/minute"),
            rate_limit_usage=_env("RATE_LIMIT_USAGE", "120/minute"),
            rate_limit_default=_env("RATE_LIMIT_DEFAULT", "60/minute"),
            rate_limit_fail_closed=_env_list("RATE_LIMIT_FAIL_CLOSED")
            if _env("RATE_LIMIT_FAIL_CLOSED")
            else ("checkout",),
            rate_limit_abuse_factor=_env_int("RATE_LIMIT_ABUSE_FACTOR", 10),
            trusted_proxies=_env_list("TRUSTED_PROXIES"),
            max_body_bytes=_env_int("MAX_BODY_BYTES", 64 * 1024),
            max_string_length=_env_int("MAX_STRING_LENGTH", 2000),
            json_max_depth=_env_int("JSON_MAX_DEPTH", 64),
            block_after_incidents=_env_int("BLOCK_AFTER_INCIDENTS", 5),
            block_window_seconds=_env_int("BLOCK_WINDOW_SECONDS", 600),
            block_seconds=_env_int("BLOCK_SECONDS", 900),
            force_https=_env_bool("FORCE_HTTPS", False),
            idempotency_checkout_seconds=_env_int("IDEMPOTENCY_CHECKOUT_SECONDS", 1800),
            idempotency_modify_seconds=_env_int("IDEMPOTENCY_MODIFY_SECONDS", 3600),
            database_retry_attempts=_env_int("DATABASE_RETRY_ATTEMPTS", 3),
            slow_request_seconds=_env_float("SLOW_REQUEST_SECONDS", 1.0),
            metrics_refresh_seconds=_env_int("METRICS_REFRESH_SECONDS", 15),
            health_db_slow_ms=_env_int("HEALTH_DB_SLOW_MS", 250),
            health_memory_percent=_env_int("HEALTH_MEMORY_PERCENT", 90),
            health_disk_percent=_env_int("HEALTH_DISK_PERCENT", 90),
            health_cpu_percent=_env_int("HEALTH_CPU_PERCENT", 95),
            health_detail_networks=_env_list("HEALTH_DETAIL_NETWORKS"),
            health_backlog_events=_env_int("HEALTH_BACKLOG_EVENTS", 100),
            health_external_ttl_seconds=_env_int("HEALTH_EXTERNAL_TTL_SECONDS", 60),
            log_level=_env("LOG_LEVEL", "INFO").upper(),
            log_json=_env_bool("LOG_JSON", True),
            var_dir=Path(_env("VAR_DIR", "./var")),
            analytics_dir=Path(_env("ANALYTICS_DIR", "")) if _env("ANALYTICS_DIR", "") else None,
            analytics_refresh_seconds=_env_int("ANALYTICS_REFRESH_SECONDS", 60),
            analytics_stale_grace_days=_env_int("ANALYTICS_STALE_GRACE_DAYS", 3),
            alert_rules_file=Path(_env("ALERT_RULES_FILE", "")) if _env("ALERT_RULES_FILE", "") else None,
            alert_channels={
                severity: tuple(
                    u
                    for u in _env(f"ALERT_CHANNELS_{severity.upper()}", DEFAULT_ALERT_CHANNEL).replace(",", " ").split()
                    if u
                )
                for severity in ALERT_SEVERITIES
            },
        )

    @property
    def user_database_url(self) -> str:
        """Where user-bound reads connect (PostgreSQL): :attr:`database_user_url`, or the main URL
        logged in as :attr:`database_user_role` without a password."""
        if self.database_user_url:
            return self.database_user_url
        scheme, sep, rest = self.database_url.partition("://")
        host = rest.rpartition("@")[2]
        return f"{scheme}{sep}{self.database_user_role}@{host}"

    @property
    def is_sqlite(self) -> bool:
        """True on the embedded default."""
        return self.database_url.startswith("sqlite")

    @property
    def auth_dev_active(self) -> bool:
        """True when locally minted development tokens are trusted (never with a JWKS URL)."""
        return self.auth_dev_mode and not self.auth_jwks_url

    @property
    def demo_mode(self) -> bool:
        """True without Stripe credentials: the simulator plays Stripe."""
        return not self.stripe_api_key

    @property
    def return_url(self) -> str:
        """Where Checkout and the billing portal send the user back to."""
        return self.app_return_url or f"{self.public_base_url}/demo/return"

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """The secrets a webhook signature is checked against. In demo mode without a configured
        secret, the well-known :data:`DEMO_WEBHOOK_SECRET` the simulator signs with."""
        if self.stripe_webhook_secrets:
            return self.stripe_webhook_secrets
        return (DEMO_WEBHOOK_SECRET,) if self.demo_mode else ()

    def describe(self) -> dict[str, str]:
        """Settings safe to print: secrets shown only as set or unset, URL passwords masked."""
        secret = {"stripe_api_key", "stripe_webhook_secrets"}
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in secret:
                out[f.name] = "set" if value else "unset"
            elif f.name.endswith("_url") and value:
                out[f.name] = _mask_url(str(value))
            else:
                out[f.name] = str(value)
        return out


def _mask_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.from_env()
