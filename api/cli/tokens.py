"""``faddl token``: development bearer tokens."""

from __future__ import annotations

import click

from api.cli.base import _settings, main


# -- authentication ------------------------------------------------------------------------------
@main.command()
@click.option("--user", "user_id", required=True, help="The user id (`sub`) the token is for.")
@click.option("--role", "roles", multiple=True, help="A role to grant (repeatable), e.g. admin.")
@click.option("--minutes", default=60, show_default=True, type=click.IntRange(1, 7 * 24 * 60), help="Lifetime.")
def token(user_id: str, roles: tuple[str, ...], minutes: int) -> None:
    """Mint a development bearer token (trusted only while AUTH_DEV_MODE=1)."""
    from api.security.tokens import mint_dev_token

    settings = _settings()
    if not settings.auth_dev_active:
        click.echo(
            "note: the API trusts this token only with AUTH_DEV_MODE=1 and no AUTH_JWKS_URL (as in `make run`)",
            err=True,
        )
    click.echo(mint_dev_token(settings, user_id, list(roles), minutes))
