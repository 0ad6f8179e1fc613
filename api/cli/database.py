"""``faddl db``: schema migrations."""

from __future__ import annotations

import click

from api.cli.base import _settings, main


# -- database ------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from api.db.migrate import upgrade

    upgrade(_settings(), revision)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes every table)."""
    from api.db.migrate import downgrade

    downgrade(_settings(), revision)
    click.echo(f"database at {revision}")
