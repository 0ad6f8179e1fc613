"""user role: least privilege

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

User-bound reads used to switch the service's connection to ``faddl_user`` with ``SET LOCAL
ROLE``, so a statement in such a session could ``RESET ROLE`` back to the login role and see
every row, and the role could update and delete its own rows. Now they log in as ``faddl_user``
itself (a role that is a member of no other, so there is nothing to switch back to), which is
granted ``SELECT`` on the per-user tables and nothing else, and whose transactions are read-only
by default. PostgreSQL only; nothing changes on SQLite.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

USER_ROLE = "faddl_user"
PER_USER_TABLES = (
    "customers",
    "user_subscriptions",
    "payment_history",
    "charges",
    "refunds",
    "disputes",
    "subscription_usage",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Roles are per cluster and several databases (tests) migrate at once: change the role only
    # when it is not as wanted yet, and try again when a concurrent migration changed it first
    # ("tuple concurrently updated").
    op.execute(
        f"""
        DO $$
        DECLARE tries int := 0;
        BEGIN
            LOOP
                BEGIN
                    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{USER_ROLE}' AND rolcanlogin) THEN
                        ALTER ROLE {USER_ROLE} LOGIN;
                    END IF;
                    IF NOT EXISTS (
                        SELECT 1 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
                        WHERE r.rolname = '{USER_ROLE}' AND s.setdatabase = 0
                          AND 'default_transaction_read_only=on' = ANY (s.setconfig)
                    ) THEN
                        ALTER ROLE {USER_ROLE} SET default_transaction_read_only = on;
                    END IF;
                    EXIT;
                EXCEPTION WHEN OTHERS THEN
                    tries := tries + 1;
                    IF tries >= 50 THEN RAISE; END IF;
                    PERFORM pg_sleep(0.02 * tries);
                END;
            END LOOP;
        END $$;
        """
    )
    for table in PER_USER_TABLES:
        op.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {table} FROM {USER_ROLE}")
        op.execute(f"GRANT SELECT ON {table} TO {USER_ROLE}")
    op.execute(f"REVOKE USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public FROM {USER_ROLE}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {USER_ROLE}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The role's attributes (LOGIN, read-only by default) stay: roles belong to the whole server,
    # and every other database on it that is at 0005 logs its user-bound reads in with this role.
    # Taking LOGIN away here locked them all out. Only this database's own grants go back.
    for table in PER_USER_TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {USER_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {USER_ROLE}")
