"""Every setting of the service, read from the environment in one place.

Nothing else in the code base reads ``os.environ``: a component receives the :class:`Settings`
it needs. Secrets are held as plain strings but never appear in ``repr`` (and so never in logs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from api.origins import origin_of

__all__ = ["DEMO_WEBHOOK_SECRET", "Settings", "get_settings", "normalise_database_url"]

_DEFAULT_SQLITE = "sqlite+aiosqlite:///./var/faddl.db"

DEMO_WEBHOOK_SECRET = "whsec_faddl_demo_not_secret"  # noqa: S105 (public on purpose)
"""Signing secret of demo mode (no ``STRIPE_API_KEY``): public by design, never accepted otherwise."""


ALERT_SEVERITIES = ("critical", "high", "medium", "low")
DEFAULT_ALERT_CHANNEL = "console://"
"""Where every severity's alerts go unless configured: the worker's own output."""


T = TypeVar("T")


class _Unset:
    def __repr__(self) -> str:
        return "unset"


_UNSET: Any = _Unset()
"""What :meth:`Setting.read` returns for a setting the environment leaves unset (or empty)."""


@dataclass(frozen=True)
class Setting:
    """How one setting is read: its environment variable(s) and the parser of the raw text."""

    env: tuple[str, ...]
    parse: Callable[[str, str], Any]
    """(variable name, raw text) -> value; raises ValueError with a message for a person."""
    secret: bool = False
    """Never shown: not in ``repr``, and only as set/unset by :meth:`Settings.describe`."""
    combine: Callable[[dict[str, Any]], Any] | None = None
    """For a setting read from several variables: their parsed values by name -> the value."""

    def read(self, environ: Mapping[str, str]) -> Any:
        if self.combine is not None:
            return self.combine({name: self._one(name, environ) for name in self.env})
        return self._one(self.env[0], environ)

    def _one(self, name: str, environ: Mapping[str, str]) -> Any:
        raw = environ.get(name, "").strip()
        return self.parse(name, raw) if raw else _UNSET


def setting(default: T, env: str, parse: Callable[[str, str], T], *, secret: bool = False) -> T:
    """A field of :class:`Settings` read from ``env`` with ``parse``, ``default`` when unset: the
    one place a setting's name, default and parser are stated (its docstring follows it)."""
    declared = Setting((env,), parse, secret)
    value: T = field(default=default, repr=not secret, metadata={"setting": declared})
    return value


# -- parsers: (variable name, non-empty raw text) -> value -----------------------------------------
def _text(name: str, raw: str) -> str:
    return raw


def _upper(name: str, raw: str) -> str:
    return raw.upper()


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def _bool(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be one of 1/0/true/false/yes/no/on/off, got {raw!r}")


def _list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _path(name: str, raw: str) -> Path:
    return Path(raw)


def _base_url(name: str, raw: str) -> str:
    return raw.rstrip("/")


def _database_url(name: str, raw: str) -> str:
    return normalise_database_url(raw)


def _origins(name: str, raw: str) -> tuple[str, ...]:
    origins = _list(name, raw)
    for entry in origins:
        try:
            origin_of(entry)
        except ValueError as exc:
            msg = f"{name}: {entry!r} {exc}; write origins as scheme://host[:port], comma-separated."
            raise ValueError(msg) from None
    return origins


def _channels(name: str, raw: str) -> tuple[str, ...]:
    return tuple(url for url in raw.replace(",", " ").split() if url)


def _by_severity(values: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    return {
        severity: (DEFAULT_ALERT_CHANNEL,) if (got := values[f"ALERT_CHANNELS_{severity.upper()}"]) is _UNSET else got
        for severity in ALERT_SEVERITIES
    }


_ALERT_CHANNELS = Setting(
    tuple(f"ALERT_CHANNELS_{severity.upper()}" for severity in ALERT_SEVERITIES), _channels, combine=_by_severity
)


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

    database_url: str = setting(_DEFAULT_SQLITE, "DATABASE_URL", _database_url)
    """SQLAlchemy URL. SQLite file under ``./var/`` by default; ``postgresql://...``
    for production (driven by asyncpg)."""

    database_pool_size: int = setting(10, "DATABASE_POOL_SIZE", _int)
    """Connections kept per API process (PostgreSQL)."""

    database_service_role: str = setting("faddl_service", "DATABASE_SERVICE_ROLE", _text)
    """PostgreSQL role the service assumes on every connection; it bypasses
    row-level security (webhooks write every user's rows). Empty to stay the login role."""

    database_user_role: str = setting("faddl_user", "DATABASE_USER_ROLE", _text)
    """PostgreSQL role user-bound reads run as: subject to row-level
    security keyed on ``app.user_id``, granted ``SELECT`` only, read-only."""

    database_user_url: str = setting("", "DATABASE_USER_URL", _database_url, secret=True)
    """How user-bound reads connect, logged in as ``DATABASE_USER_ROLE``
    itself, so such a session has no other role to switch back to. Default: ``DATABASE_URL`` with
    that user and no password (enough under trust or peer authentication); with a password in it,
    ``faddl db upgrade`` sets that password on the role."""

    redis_url: str = setting("", "REDIS_URL", _text)
    """Optional Redis, shared by several API processes (rate limits, idempotency)."""

    stripe_api_key: str = setting("", "STRIPE_API_KEY", _text, secret=True)
    """Secret key for the Stripe API. Empty: demo mode (the simulator plays Stripe)."""

    stripe_webhook_secrets: tuple[str, ...] = setting((), "STRIPE_WEBHOOK_SECRET", _list, secret=True)
    """Comma-separated endpoint secrets; any one verifies a delivery, so a
    secret can be rotated without downtime."""

    stripe_api_base: str = setting("", "STRIPE_API_BASE", _text)
    """Base URL of a local Stripe stand-in; empty for the real API."""

    stripe_timeout_seconds: float = setting(10.0, "STRIPE_TIMEOUT_SECONDS", _float)
    """Time limit of one HTTP request to the Stripe API."""

    stripe_max_network_retries: int = setting(2, "STRIPE_MAX_NETWORK_RETRIES", _int)
    """Retries the stripe SDK makes itself on network errors, 409
    and 5xx answers (with the same idempotency key, so a retried POST never acts twice)."""

    stripe_breaker_threshold: int = setting(5, "STRIPE_BREAKER_THRESHOLD", _int)
    """Consecutive failed Stripe calls (network, 5xx, 429) that open
    the circuit breaker; while it is open, billing actions answer 503 at once."""

    stripe_breaker_reset_seconds: int = setting(30, "STRIPE_BREAKER_RESET_SECONDS", _int)
    """How long the breaker stays open before one trial call."""

    # -- syncing from the Stripe API (``faddl sync``, catch-up, reconciliation) -------------------
    stripe_sync_requests_per_second: float = setting(0.0, "STRIPE_SYNC_REQUESTS_PER_SECOND", _float)
    """Ceiling on the sync's requests to the Stripe API (a token bucket).
    0: Stripe's own limits less a margin, 25 a second with a test key and 90 with a live one;
    a negative value turns the ceiling off (a local stand-in)."""

    stripe_catchup_seconds: int = setting(300, "STRIPE_CATCHUP_SECONDS", _int)
    """How often the worker reads Stripe's Events API for events no
    webhook brought (and at once on start when the newest delivery is older than this); 0: never."""

    stripe_reconcile_seconds: int = setting(21_600, "STRIPE_RECONCILE_SECONDS", _int)
    """How often the worker reconciles the projections with Stripe;
    0: never."""

    public_base_url: str = setting("http://127.0.0.1:8000", "PUBLIC_BASE_URL", _base_url)
    """Where browsers reach this service (demo checkout and portal pages)."""

    app_return_url: str = setting("", "APP_RETURN_URL", _text)
    """The client app page Stripe Checkout and the billing portal send the user
    back to (``?checkout=success|canceled`` or ``?portal=done`` is appended); this service's own
    small return page when empty."""

    checkout_return_origins: tuple[str, ...] = setting((), "CHECKOUT_RETURN_ORIGINS", _origins)
    """Comma-separated origins (``scheme://host[:port]``, e.g.
    ``https://app.example.com,myapp://checkout``) a client may send its own ``success_url``,
    ``cancel_url`` (checkout) or ``return_url`` (billing portal) on; the origin of ``APP_RETURN_URL``
    is always allowed. Any other URL is refused with 400 (no open redirect)."""

    webhook_tolerance_seconds: int = setting(300, "WEBHOOK_TOLERANCE_SECONDS", _int)
    """Oldest accepted ``Stripe-Signature`` timestamp, in seconds."""

    webhook_batch_max: int = setting(64, "WEBHOOK_BATCH_MAX", _int)
    """Most deliveries one group-commit transaction takes (see README)."""

    retry_max_attempts: int = setting(8, "RETRY_MAX_ATTEMPTS", _int)
    """Processing attempts of an event before it is marked ``dead``."""

    retry_base_seconds: int = setting(30, "RETRY_BASE_SECONDS", _int)
    """First retry delay; each later one doubles, up to ``RETRY_MAX_SECONDS``."""

    retry_max_seconds: int = setting(6 * 3600, "RETRY_MAX_SECONDS", _int)
    """Longest delay between two retries of a failed event."""

    worker_poll_seconds: float = setting(5.0, "WORKER_POLL_SECONDS", _float)
    """How often ``faddl worker`` looks for failed events that are due."""

    escalation_attempts: int = setting(3, "ESCALATION_ATTEMPTS", _int)
    """Failed payment attempts on one invoice that record an escalation event."""

    plans_file: Path | None = setting(None, "PLANS_FILE", _path)
    """TOML plan catalogue (names, Stripe price ids, feature limits); the built-in
    demo catalogue when unset."""

    entitlement_past_due_grace_days: int = setting(7, "ENTITLEMENT_PAST_DUE_GRACE_DAYS", _int)
    """How long a ``past_due`` subscription keeps its features
    after the unpaid invoice was issued."""

    auth_jwks_url: str = setting("", "AUTH_JWKS_URL", _text)
    """JWKS of the identity provider (Clerk or any OIDC provider); bearer tokens
    are RS256/ES256 JWTs signed by one of its keys."""

    auth_issuer: str = setting("", "AUTH_ISSUER", _text)
    """Required ``iss`` of tokens (unchecked when empty)."""

    auth_audience: str = setting("", "AUTH_AUDIENCE", _text)
    """Required ``aud`` of tokens (unchecked when empty)."""

    auth_role_claim: str = setting("metadata.role", "AUTH_ROLE_CLAIM", _text)
    """Dotted path of the claim holding the user's role(s); ``admin`` unlocks
    the admin routes."""

    auth_leeway_seconds: int = setting(30, "AUTH_LEEWAY_SECONDS", _int)
    """Clock skew allowed on ``exp``, ``nbf`` and ``iat``."""

    auth_dev_mode: bool = setting(False, "AUTH_DEV_MODE", _bool)
    """Trust tokens minted by ``faddl token`` with the local development key.
    On in ``make run``; ignored whenever ``AUTH_JWKS_URL`` is set."""

    rate_limits_enabled: bool = setting(True, "RATE_LIMITS_ENABLED", _bool)
    """Per-tier request limits (moving window, ``limits`` library)."""

    rate_limit_webhook: str = setting("100/minute", "RATE_LIMIT_WEBHOOK", _text)
    """Stripe deliveries per source IP (``N/second|minute|hour``)."""

    rate_limit_checkout: str = setting("5/minute", "RATE_LIMIT_CHECKOUT", _text)
    """``POST /api/checkout`` per user."""

    rate_limit_subscription_read: str = setting("30/minute", "RATE_LIMIT_SUBSCRIPTION_READ", _text)
    """Subscription and usage reads per user."""

    rate_limit_subscription_write: str = setting("3/minute", "RATE_LIMIT_SUBSCRIPTION_WRITE", _text)
    """Cancel, resume, change plan and billing portal per user."""

    rate_limit_usage: str = setting("120/minute", "RATE_LIMIT_USAGE", _text)
    """``POST /api/usage`` per user."""

    rate_limit_default: str = setting("60/minute", "RATE_LIMIT_DEFAULT", _text)
    """Every other route, per user (or per IP without a token)."""

    rate_limit_fail_closed: tuple[str, ...] = setting(("checkout",), "RATE_LIMIT_FAIL_CLOSED", _list)
    """Tiers refused (503) while the limit store (Redis) is unreachable;
    the others are let through. Either way it is logged and counted."""

    rate_limit_abuse_factor: int = setting(10, "RATE_LIMIT_ABUSE_FACTOR", _int)
    """A key refused this many times its limit within one window is
    recorded as a security incident."""

    trusted_proxies: tuple[str, ...] = setting((), "TRUSTED_PROXIES", _list)
    """Comma-separated addresses/CIDRs of reverse proxies whose
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed; empty: the peer address is the client."""

    max_body_bytes: int = setting(64 * 1024, "MAX_BODY_BYTES", _int)
    """Largest request body of the client API (the webhook route allows 1 MiB)."""

    max_string_length: int = setting(2000, "MAX_STRING_LENGTH", _int)
    """Longest string accepted in any body, query or path parameter."""

    json_max_depth: int = setting(64, "JSON_MAX_DEPTH", _int)
    """Deepest nesting of objects and arrays accepted in a JSON body (client API
    and webhook); Stripe's events nest about 10 deep."""

    block_after_incidents: int = setting(5, "BLOCK_AFTER_INCIDENTS", _int)
    """Security incidents within ``BLOCK_WINDOW_SECONDS`` that block a
    client (its IP, or its user when authenticated); 0 turns automatic blocking off."""

    block_window_seconds: int = setting(600, "BLOCK_WINDOW_SECONDS", _int)
    """The window those incidents are counted in."""

    block_seconds: int = setting(900, "BLOCK_SECONDS", _int)
    """How long a blocked client is refused (403)."""

    force_https: bool = setting(False, "FORCE_HTTPS", _bool)
    """Refuse plain-HTTP requests (as seen through a trusted proxy's
    ``X-Forwarded-Proto``; GET/HEAD are redirected) and send HSTS."""

    idempotency_checkout_seconds: int = setting(1800, "IDEMPOTENCY_CHECKOUT_SECONDS", _int)
    """How long an ``Idempotency-Key`` of ``POST /api/checkout``
    is remembered."""

    idempotency_modify_seconds: int = setting(3600, "IDEMPOTENCY_MODIFY_SECONDS", _int)
    """The same for cancel, resume, change plan and billing portal."""

    database_retry_attempts: int = setting(3, "DATABASE_RETRY_ATTEMPTS", _int)
    """Tries of a client-API database transaction that meets a
    transient error (connection reset, serialization failure, deadlock)."""

    slow_request_seconds: float = setting(1.0, "SLOW_REQUEST_SECONDS", _float)
    """Requests slower than this are logged with their trace id."""

    metrics_refresh_seconds: int = setting(15, "METRICS_REFRESH_SECONDS", _int)
    """How old the database gauges on ``/metrics`` may be."""

    health_db_slow_ms: int = setting(250, "HEALTH_DB_SLOW_MS", _int)
    """A database round trip slower than this makes the service degraded."""

    health_memory_percent: int = setting(90, "HEALTH_MEMORY_PERCENT", _int)
    """System memory use above this makes the service degraded."""

    health_disk_percent: int = setting(90, "HEALTH_DISK_PERCENT", _int)
    """Disk use (of ``VAR_DIR``'s file system) above this makes it degraded."""

    health_cpu_percent: int = setting(95, "HEALTH_CPU_PERCENT", _int)
    """System CPU use above this makes the service degraded."""

    health_detail_networks: tuple[str, ...] = setting((), "HEALTH_DETAIL_NETWORKS", _list)
    """Networks (comma-separated CIDRs, e.g. ``10.0.0.0/8``) whose
    connections see ``GET /api/health`` with every component's details; everyone else sees the
    status and score only, unless they send an admin token."""

    health_backlog_events: int = setting(100, "HEALTH_BACKLOG_EVENTS", _int)
    """Failed events waiting for a retry above this make it degraded; any
    dead event does too."""

    health_external_ttl_seconds: int = setting(60, "HEALTH_EXTERNAL_TTL_SECONDS", _int)
    """How long Stripe's and the identity provider's reachability
    checks are cached (never one per health call)."""

    log_level: str = setting("INFO", "LOG_LEVEL", _upper)
    """DEBUG, INFO, WARNING or ERROR."""

    log_json: bool = setting(True, "LOG_JSON", _bool)
    """JSON log lines (default) or human-readable console lines."""

    var_dir: Path = setting(Path("./var"), "VAR_DIR", _path)
    """Where the embedded default keeps its files (SQLite database, demo data)."""

    analytics_dir: Path | None = setting(None, "ANALYTICS_DIR", _path)
    """The Parquet export of the event log the KPIs read (default
    ``VAR_DIR/analytics``)."""

    analytics_refresh_seconds: int = setting(60, "ANALYTICS_REFRESH_SECONDS", _int)
    """How often the worker appends new events to the Parquet export,
    refreshes the KPI snapshot and evaluates the business alerts at the
    latest (time-windowed alerts change with time alone)."""

    analytics_watch_seconds: float = setting(1.0, "ANALYTICS_WATCH_SECONDS", _float)
    """How often the worker looks for newly committed events (one index
    lookup); when there are, it refreshes the export, the KPI snapshot and
    the alerts at once, so a webhook is on the dashboard within seconds.
    0 turns it off (refresh every ANALYTICS_REFRESH_SECONDS only)."""

    dashboard_login: bool = setting(True, "DASHBOARD_LOGIN", _bool)
    """The dashboard asks for a login (Streamlit's OIDC login, the same
    identity provider as the API) and admits the admin role only. ``faddl
    run`` turns it off in demo mode on localhost; elsewhere it stays on, and
    without the DASHBOARD_OIDC_* settings the dashboard says so and shows
    nothing."""

    dashboard_oidc_metadata_url: str = setting("", "DASHBOARD_OIDC_METADATA_URL", _text)
    """The identity provider's OpenID configuration
    (``https://idp.example/.well-known/openid-configuration``)."""

    dashboard_oidc_client_id: str = setting("", "DASHBOARD_OIDC_CLIENT_ID", _text)
    """The dashboard's client id at the identity provider."""

    dashboard_oidc_client_secret: str = setting("", "DASHBOARD_OIDC_CLIENT_SECRET", _text, secret=True)
    """The dashboard's client secret at the identity provider."""

    dashboard_oidc_redirect_uri: str = setting("", "DASHBOARD_OIDC_REDIRECT_URI", _text)
    """Where the provider sends the browser back: the dashboard's address
    followed by ``/oauth2callback``."""

    dashboard_cookie_secret: str = setting("", "DASHBOARD_COOKIE_SECRET", _text, secret=True)
    """The secret that signs the dashboard's login cookie (a long random string)."""

    fx_rates_file: Path | None = setting(None, "FX_RATES_FILE", _path)
    """The European Central Bank's CSV of euro reference rates (``eurofxref-hist.csv`` as
    downloaded from ecb.europa.eu): with it, the dashboard totals MRR in a reporting currency and
    shows the FX effect apart from the movements. None is shipped."""

    analytics_stale_grace_days: int = setting(3, "ANALYTICS_STALE_GRACE_DAYS", _int)
    """Days past the end of its current period after which a
    subscription still ``active`` (or ``past_due``) with no renewal seen is stale: listed as such and
    no longer counted in MRR (the grace keeps a late renewal from flickering)."""

    alert_rules_file: Path | None = setting(None, "ALERT_RULES_FILE", _path)
    """A TOML file of business alert rules replacing the built-in defaults
    (``analytics/alerts/rules.toml``); rules it leaves out keep their defaults."""

    alert_channels: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {severity: (DEFAULT_ALERT_CHANNEL,) for severity in ALERT_SEVERITIES},
        metadata={"setting": _ALERT_CHANNELS},
    )
    """``ALERT_CHANNELS_CRITICAL``, ``_HIGH``, ``_MEDIUM``, ``_LOW``: apprise URLs (space or comma
    separated) each severity is delivered to, e.g. ``console:// mailtos://... slack://...
    json://host/hook``. Default: ``console://`` for every severity. URLs are secrets: never logged."""

    @property
    def analytics_path(self) -> Path:
        return self.analytics_dir or self.var_dir / "analytics"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every declared setting from the environment (``os.environ`` by default); what is
        unset or empty keeps its default."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            declared: Setting | None = f.metadata.get("setting")
            if declared is not None and (value := declared.read(source)) is not _UNSET:
                values[f.name] = value
        return cls(**values)

    @classmethod
    def declared(cls) -> list[tuple[str, Setting, Any]]:
        """Every setting: its field, its declaration (environment names, parser) and its default."""
        out: list[tuple[str, Setting, Any]] = []
        for f in fields(cls):
            declared: Setting | None = f.metadata.get("setting")
            if declared is not None:
                default = (
                    f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default
                )
                out.append((f.name, declared, default))
        return out

    @property
    def rate_limit_tiers(self) -> dict[str, str]:
        """Every rate-limit tier and its limit (``N/second|minute|hour|day``), the one mapping the
        limiter is built from."""
        return {
            "webhook": self.rate_limit_webhook,
            "checkout": self.rate_limit_checkout,
            "subscription_read": self.rate_limit_subscription_read,
            "subscription_write": self.rate_limit_subscription_write,
            "usage": self.rate_limit_usage,
            "default": self.rate_limit_default,
        }

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
    def sync_rate(self) -> float | None:
        """Requests a second the sync may make to Stripe, or None for no ceiling."""
        if self.stripe_sync_requests_per_second < 0:
            return None
        if self.stripe_sync_requests_per_second > 0:
            return self.stripe_sync_requests_per_second
        return 90.0 if self.stripe_api_key.startswith(("sk_live_", "rk_live_")) else 25.0

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
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            declared: Setting | None = f.metadata.get("setting")
            if declared is not None and declared.secret:
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
