"""projections: derived values as functions of the events

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Values one projection takes from another (a row's user from its customer, a refund's or dispute's
customer from its charge, an invoice's decline reason from its failed charge) are re-derived
whenever either side changes, so each row keeps what its own newest snapshot said apart from
what is derived: ``metadata_user_id`` on every owned row, the earliest user claim on customers,
the invoice's own decline reason. ``invoice_payments`` links invoices to the payments that pay
them (current API versions carry the link only there).

The new columns start empty; ``faddl replay`` fills them from the log (run it after upgrading).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OWNED = ("user_subscriptions", "payment_history", "charges", "refunds", "disputes")


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("metadata_user_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("claim_user_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("claim_created", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("claim_event_id", sa.String(length=255), nullable=True))
    for table in _OWNED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("metadata_user_id", sa.String(length=255), nullable=True))
    with op.batch_alter_table("payment_history") as batch_op:
        batch_op.add_column(sa.Column("own_failure_code", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("own_failure_message", sa.Text(), nullable=True))
    op.create_table(
        "invoice_payments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("stripe_invoice_payment_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_invoice_id", sa.String(length=255), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_charge_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("amount_requested", sa.BigInteger(), nullable=True),
        sa.Column("amount_paid", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_id", sa.String(length=255), nullable=False),
        sa.Column("last_event_created", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_payments")),
        sa.UniqueConstraint("stripe_invoice_payment_id", name=op.f("uq_invoice_payments_stripe_invoice_payment_id")),
    )
    with op.batch_alter_table("invoice_payments") as batch_op:
        for column in ("stripe_invoice_id", "payment_intent_id", "stripe_charge_id"):
            batch_op.create_index(batch_op.f(f"ix_invoice_payments_{column}"), [column], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON invoice_payments TO faddl_service")
        op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO faddl_service")


def downgrade() -> None:
    op.drop_table("invoice_payments")
    with op.batch_alter_table("payment_history") as batch_op:
        batch_op.drop_column("own_failure_message")
        batch_op.drop_column("own_failure_code")
    for table in _OWNED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("metadata_user_id")
    with op.batch_alter_table("customers") as batch_op:
        for column in ("claim_event_id", "claim_created", "claim_user_id", "metadata_user_id"):
            batch_op.drop_column(column)
