"""stripe sync: cursors, object digests, runs and drift

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

``sync_cursors``: where ``faddl sync`` is in each resource's list, so a killed sync resumes.
``sync_objects``: the digest of each object as the sync last logged it (an unchanged object
stores nothing). ``sync_runs``: every sync, catch-up and reconciliation with its summary.
``sync_drift``: each difference reconciliation found between the projections and Stripe. All
four belong to the service alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sync_cursors",
        sa.Column("resource", sa.String(length=32), nullable=False),
        sa.Column("starting_after", sa.String(length=255), nullable=True),
        sa.Column("since", sa.BigInteger(), nullable=True),
        sa.Column("started_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("completed_at", When, nullable=True),
        sa.Column("fetched", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stored", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("resource", name=op.f("pk_sync_cursors")),
    )
    op.create_table(
        "sync_objects",
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("synced_at", When, nullable=False),
        sa.PrimaryKeyConstraint("object_id", name=op.f("pk_sync_objects")),
    )
    op.create_table(
        "sync_runs",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", When, nullable=False),
        sa.Column("finished_at", When, nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    # The last success of each kind, read at every gauge refresh: one index probe per kind.
    op.create_index("ix_sync_runs_kind_outcome_finished_at", "sync_runs", ["kind", "outcome", "finished_at"])
    op.create_table(
        "sync_drift",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("found_at", When, nullable=False),
        sa.Column("healed_at", When, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_drift")),
    )
    op.create_index("ix_sync_drift_found_at", "sync_drift", ["found_at"])
    if op.get_bind().dialect.name == "postgresql":
        for table in ("sync_cursors", "sync_objects", "sync_runs", "sync_drift"):
            op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO faddl_service")
        op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO faddl_service")


def downgrade() -> None:
    op.drop_index("ix_sync_drift_found_at", table_name="sync_drift")
    op.drop_table("sync_drift")
    op.drop_index("ix_sync_runs_kind_outcome_finished_at", table_name="sync_runs")
    op.drop_table("sync_runs")
    op.drop_table("sync_objects")
    op.drop_table("sync_cursors")
