"""analytics: business alerts and KPI snapshots

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

``alerts``: one row per firing of a rule for a key (history); at most one open (``firing``) row
per rule and key, enforced by a partial unique index. ``kpi_snapshots``: the KPI document the
worker computes, so the dashboard API answers without recomputing. An index on the event log's
``received_at`` for the dashboard's 24-hour counts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("recommendation", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivery", sa.String(length=255), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_rule_key", "alerts", ["rule", "key"])
    op.create_index("ix_alerts_first_seen_at", "alerts", ["first_seen_at"])
    op.create_index(
        "uq_alerts_open",
        "alerts",
        ["rule", "key"],
        unique=True,
        sqlite_where=sa.text("status = 'firing'"),
        postgresql_where=sa.text("status = 'firing'"),
    )
    op.create_table(
        "kpi_snapshots",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_until", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_snapshots")),
    )
    op.create_index("ix_kpi_snapshots_computed_at", "kpi_snapshots", ["computed_at"])
    # The admin dashboard counts the last 24 hours of deliveries.
    op.create_index("ix_subscription_events_received_at", "subscription_events", ["received_at"])
    if op.get_bind().dialect.name == "postgresql":
        for table in ("alerts", "kpi_snapshots"):
            op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO faddl_service")
        op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO faddl_service")


def downgrade() -> None:
    op.drop_index("ix_subscription_events_received_at", table_name="subscription_events")
    op.drop_index("ix_kpi_snapshots_computed_at", table_name="kpi_snapshots")
    op.drop_table("kpi_snapshots")
    op.drop_index("uq_alerts_open", table_name="alerts")
    op.drop_index("ix_alerts_first_seen_at", table_name="alerts")
    op.drop_index("ix_alerts_rule_key", table_name="alerts")
    op.drop_table("alerts")
