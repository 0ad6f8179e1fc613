"""The tables: the event log and the projections built from it.

Stripe timestamps are stored as UTC datetimes for people and SQL; the ordering watermark of each
projection row (``last_event_created``) stays the event's integer ``created`` so comparisons are exact.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "PER_USER_TABLES",
    "Alert",
    "Base",
    "Charge",
    "Customer",
    "Dispute",
    "InvoicePayment",
    "KpiSnapshot",
    "PaymentHistory",
    "Refund",
    "SubscriptionEvent",
    "SubscriptionUsage",
    "SyncCursor",
    "SyncDrift",
    "SyncObject",
    "SyncRun",
    "UserSubscription",
    "alerts",
    "charges",
    "customers",
    "disputes",
    "invoice_payments",
    "kpi_snapshots",
    "payment_history",
    "refunds",
    "subscription_events",
    "subscription_usage",
    "sync_cursors",
    "sync_drift",
    "sync_objects",
    "sync_runs",
    "user_subscriptions",
]

# One convention for constraint names, so Alembic migrations name them the same on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")
TZDateTime = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SubscriptionEvent(Base):
    """The event log: every Stripe event as received, and the service's own events. Append-only:
    rows are never deleted and ``payload`` never changes; only the processing columns move."""

    __tablename__ = "subscription_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # "stripe", "stripe_api" or "service"
    type: Mapped[str] = mapped_column(String(128))
    api_version: Mapped[str | None] = mapped_column(String(32))
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[int] = mapped_column(BigInteger)  # Stripe's epoch seconds
    received_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(255))
    customer_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)  # the raw JSON body, byte for byte (decoded UTF-8)
    status: Mapped[str] = mapped_column(String(16))  # processed | ignored | failed | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_retry_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(TZDateTime)

    __table_args__ = (
        Index("ix_subscription_events_object_created", "object_id", "created"),
        Index("ix_subscription_events_status_retry", "status", "next_retry_at"),
        Index("ix_subscription_events_customer_id", "customer_id"),
        Index("ix_subscription_events_type_created", "type", "created"),
        Index("ix_subscription_events_created", "created"),
        Index("ix_subscription_events_received_at", "received_at"),
    )


class _Watermarked:
    """Columns every projection row carries: which event it reflects, for out-of-order delivery."""

    last_event_id: Mapped[str] = mapped_column(String(255))
    last_event_created: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now(), onupdate=func.now())


class Customer(_Watermarked, Base):
    """Links our user ids to Stripe customers."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    """The user this customer belongs to: ``metadata_user_id``, else ``claim_user_id``."""
    metadata_user_id: Mapped[str | None] = mapped_column(String(255))
    """``metadata.user_id`` of the customer's newest snapshot."""
    claim_user_id: Mapped[str | None] = mapped_column(String(255))
    """The user named by the earliest claim (a checkout session, a subscription's metadata)."""
    claim_created: Mapped[int | None] = mapped_column(BigInteger)
    claim_event_id: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(512))
    name: Mapped[str | None] = mapped_column(String(512))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime | None] = mapped_column(TZDateTime)


class UserSubscription(_Watermarked, Base):
    """One row per Stripe subscription, as of the newest event about it."""

    __tablename__ = "user_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stripe_subscription_id: Mapped[str] = mapped_column(String(255), unique=True)
    user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    metadata_user_id: Mapped[str | None] = mapped_column(String(255))
    """``metadata.user_id`` of the object's newest snapshot; ``user_id`` is its customer's user, else this."""
    stripe_customer_id: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    price_id: Mapped[str | None] = mapped_column(String(255))
    product_id: Mapped[str | None] = mapped_column(String(255))
    quantity: Mapped[int | None] = mapped_column(Integer)
    interval: Mapped[str | None] = mapped_column(String(16))
    interval_count: Mapped[int | None] = mapped_column(Integer)
    unit_amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(8))
    items_count: Mapped[int] = mapped_column(Integer, default=1)
    current_period_start: Mapped[datetime | None] = mapped_column(TZDateTime)
    current_period_end: Mapped[datetime | None] = mapped_column(TZDateTime)
    trial_start: Mapped[datetime | None] = mapped_column(TZDateTime)
    trial_end: Mapped[datetime | None] = mapped_column(TZDateTime)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    canceled_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    pause_behavior: Mapped[str | None] = mapped_column(String(32))
    discount: Mapped[str | None] = mapped_column(Text)  # JSON summary of the coupons in force
    latest_invoice_id: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime | None] = mapped_column(TZDateTime)


class PaymentHistory(_Watermarked, Base):
    """One row per invoice."""

    __tablename__ = "payment_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stripe_invoice_id: Mapped[str] = mapped_column(String(255), unique=True)
    user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    metadata_user_id: Mapped[str | None] = mapped_column(String(255))
    """``metadata.user_id`` of the object's newest snapshot; ``user_id`` is its customer's user, else this."""
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    amount_due: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_remaining: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str | None] = mapped_column(String(32))
    billing_reason: Mapped[str | None] = mapped_column(String(64))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    attempted: Mapped[bool] = mapped_column(Boolean, default=False)
    next_payment_attempt: Mapped[datetime | None] = mapped_column(TZDateTime)
    action_required: Mapped[bool] = mapped_column(Boolean, default=False)
    failure_code: Mapped[str | None] = mapped_column(String(128))
    """The decline reason of the invoice's newest failed charge, else ``own_failure_code``."""
    failure_message: Mapped[str | None] = mapped_column(Text)
    own_failure_code: Mapped[str | None] = mapped_column(String(128))
    """The decline reason the invoice's newest snapshot carries itself (an expanded intent or charge)."""
    own_failure_message: Mapped[str | None] = mapped_column(Text)
    hosted_invoice_url: Mapped[str | None] = mapped_column(Text)
    period_start: Mapped[datetime | None] = mapped_column(TZDateTime)
    period_end: Mapped[datetime | None] = mapped_column(TZDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    created: Mapped[datetime | None] = mapped_column(TZDateTime)


class InvoicePayment(_Watermarked, Base):
    """Which payments pay which invoice: Stripe's invoice payments (``invoice.payments``, the
    ``invoice_payment.*`` events), and the links older API versions carry (``invoice.payment_intent``,
    ``invoice.charge``, ``charge.invoice``, keyed ``<invoice>:<payment>``). A link, once seen, stays:
    a newer snapshot that leaves the field out does not remove it."""

    __tablename__ = "invoice_payments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stripe_invoice_payment_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_invoice_id: Mapped[str] = mapped_column(String(255), index=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str | None] = mapped_column(String(32))
    amount_requested: Mapped[int | None] = mapped_column(BigInteger)
    amount_paid: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(8))
    created: Mapped[datetime | None] = mapped_column(TZDateTime)


class Charge(_Watermarked, Base):
    """One row per charge: payment attempts, with the decline reason of a failed one."""

    __tablename__ = "charges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stripe_charge_id: Mapped[str] = mapped_column(String(255), unique=True)
    user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    metadata_user_id: Mapped[str | None] = mapped_column(String(255))
    """``metadata.user_id`` of the object's newest snapshot; ``user_id`` is its customer's user, else this."""
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str | None] = mapped_column(String(32))
    failure_code: Mapped[str | None] = mapped_column(String(128))
    failure_message: Mapped[str | None] = mapped_column(Text)
    disputed: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime | None] = mapped_column(TZDateTime)


class _OfCharge(_Watermarked):
    """Columns of what happens to a charge after the fact (refunds, disputes)."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    metadata_user_id: Mapped[str | None] = mapped_column(String(255))
    """``metadata.user_id`` of the object's newest snapshot; ``user_id`` is its customer's user, else this."""
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    created: Mapped[datetime | None] = mapped_column(TZDateTime)


class Refund(_OfCharge, Base):
    """One row per refund (booked on its own date, never as MRR)."""

    __tablename__ = "refunds"

    stripe_refund_id: Mapped[str] = mapped_column(String(255), unique=True)


class Dispute(_OfCharge, Base):
    """One row per dispute (chargeback)."""

    __tablename__ = "disputes"

    stripe_dispute_id: Mapped[str] = mapped_column(String(255), unique=True)


class SubscriptionUsage(Base):
    """Usage counted per user, feature and billing period (written by the usage API)."""

    __tablename__ = "subscription_usage"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(255))
    feature: Mapped[str] = mapped_column(String(128))
    period_start: Mapped[datetime] = mapped_column(TZDateTime)
    period_end: Mapped[datetime] = mapped_column(TZDateTime)
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        UniqueConstraint("user_id", "feature", "period_start", name="uq_subscription_usage_user_feature_period"),
    )


class SecurityIncident(Base):
    """Security events: detected attacks, rate-limit abuse, and clients blocked and unblocked.
    Append-only, like the event log; read by ops and by the business alerts."""

    __tablename__ = "security_incidents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    kind: Mapped[str] = mapped_column(String(32))
    """sql_injection, xss, path_traversal, command_injection, oversized, rate_limit_abuse,
    blocked, unblocked."""
    route: Mapped[str | None] = mapped_column(String(255))
    method: Mapped[str | None] = mapped_column(String(8))
    user_id: Mapped[str | None] = mapped_column(String(255))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    sample: Mapped[str | None] = mapped_column(String(256))
    """The offending input, truncated, for a person to judge (never rendered as HTML)."""
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_security_incidents_created_at", "created_at"),
        Index("ix_security_incidents_kind_created_at", "kind", "created_at"),
    )


class IdempotencyKey(Base):
    """``Idempotency-Key`` requests of the client API and their stored answers (the default store;
    Redis when configured). A row is ``running`` while its first request is in flight."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope_key: Mapped[str] = mapped_column(String(64), unique=True)
    """Digest of user + key: keys are scoped per user."""
    route: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TZDateTime)
    expires_at: Mapped[datetime] = mapped_column(TZDateTime)

    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)


class Alert(Base):
    """A business alert: one row per firing of a rule for a key, kept as history once resolved."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    """What the rule fired about: ``all``, a currency, a subscription id..."""
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    """``firing`` or ``resolved``."""
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    recommendation: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(TZDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(TZDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    delivery: Mapped[str | None] = mapped_column(String(255))
    """What became of the notification: delivered, suppressed by the cooldown, or failed."""
    acknowledged_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index("ix_alerts_rule_key", "rule", "key"),
        Index("ix_alerts_first_seen_at", "first_seen_at"),
        Index(
            "uq_alerts_open",
            "rule",
            "key",
            unique=True,
            sqlite_where=text("status = 'firing'"),
            postgresql_where=text("status = 'firing'"),
        ),
    )


class KpiSnapshot(Base):
    """The KPI document as the worker last computed it (the admin dashboard reads the newest)."""

    __tablename__ = "kpi_snapshots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    computed_at: Mapped[datetime] = mapped_column(TZDateTime)
    computed_until: Mapped[int] = mapped_column(BigInteger)
    """``created`` of the newest event the KPIs include."""
    duration_ms: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_kpi_snapshots_computed_at", "computed_at"),)


class SyncCursor(Base):
    """Where ``faddl sync`` is in one resource's list: killed and started again, it goes on after
    ``starting_after``; a resource walked to its end has ``completed_at`` and no cursor."""

    __tablename__ = "sync_cursors"

    resource: Mapped[str] = mapped_column(String(32), primary_key=True)
    starting_after: Mapped[str | None] = mapped_column(String(255))
    """The id of the last object stored, in Stripe's list order (newest first)."""
    since: Mapped[int | None] = mapped_column(BigInteger)
    """The ``--since`` the walk was started with (a resumed walk keeps it)."""
    started_at: Mapped[datetime] = mapped_column(TZDateTime)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    fetched: Mapped[int] = mapped_column(Integer, server_default="0")
    stored: Mapped[int] = mapped_column(Integer, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, server_default="0")


class SyncObject(Base):
    """The digest of each object as the sync last logged it, so an unchanged object stores nothing.
    A cache of the log's ``stripe_sync`` rows (the digest is part of their event id)."""

    __tablename__ = "sync_objects"

    object_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    object_type: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    created: Mapped[int] = mapped_column(BigInteger)
    """The snapshot event's ``created``: the next snapshot of the object is dated after it."""
    synced_at: Mapped[datetime] = mapped_column(TZDateTime)


class SyncRun(Base):
    """One run of the sync, the Events API catch-up or reconciliation, with its summary."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    """``sync``, ``catchup`` or ``reconcile``."""
    started_at: Mapped[datetime] = mapped_column(TZDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    """``running``, ``succeeded``, ``failed`` (Stripe unreachable, a wrong key...)."""
    summary: Mapped[str] = mapped_column(Text, server_default="{}")
    """JSON: per resource fetched, stored, unchanged, failed; the objects that failed and why."""

    __table_args__ = (Index("ix_sync_runs_kind_outcome_finished_at", "kind", "outcome", "finished_at"),)


class SyncDrift(Base):
    """A difference reconciliation found between a projection row and the object at Stripe."""

    __tablename__ = "sync_drift"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(255))
    fields: Mapped[str] = mapped_column(Text)
    """JSON: each field that differed, with what we had and what Stripe said."""
    found_at: Mapped[datetime] = mapped_column(TZDateTime)
    healed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    """When the fetched object, logged as a snapshot, brought the projection in line."""

    __table_args__ = (Index("ix_sync_drift_found_at", "found_at"),)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


# Core tables, for the hot paths that run SQL without the ORM.
subscription_events = _table(SubscriptionEvent)
customers = _table(Customer)
user_subscriptions = _table(UserSubscription)
payment_history = _table(PaymentHistory)
invoice_payments = _table(InvoicePayment)
charges = _table(Charge)
refunds = _table(Refund)
disputes = _table(Dispute)
subscription_usage = _table(SubscriptionUsage)
security_incidents = _table(SecurityIncident)
idempotency_keys = _table(IdempotencyKey)
alerts = _table(Alert)
kpi_snapshots = _table(KpiSnapshot)
sync_cursors = _table(SyncCursor)
sync_objects = _table(SyncObject)
sync_runs = _table(SyncRun)
sync_drift = _table(SyncDrift)

PER_USER_TABLES = (
    "customers",
    "user_subscriptions",
    "payment_history",
    "charges",
    "refunds",
    "disputes",
    "subscription_usage",
)
"""Tables with a ``user_id`` column, guarded by row-level security on PostgreSQL."""
