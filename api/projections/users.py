"""Whose rows they are: each customer's user, and every row owned through it.

A customer's user is its newest snapshot's ``metadata.user_id``, else the earliest claim (by
``created``, then event id) that something else made for it: a checkout session's
``client_reference_id``, a subscription's ``metadata.user_id``. Where a customer's user changes,
every row it owns (subscriptions, invoices, charges, refunds, disputes) takes it again, so the
result never depends on which arrived first."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from api.projections.statements import claim_users, link_users, rederive_users

__all__ = ["Claim", "add_claim", "link_users_of"]

# Rows that take their user from their customer; charges before the refunds and disputes that
# fall back to their charge's user.
OWNED_BY_CUSTOMER = ("subscription", "invoice", "charge", "refund", "dispute")


@dataclass(frozen=True)
class Claim:
    """A user named for a customer by something other than the customer: the earliest counts."""

    created: int
    event_id: str
    user: str


def add_claim(claims: dict[str, Claim], customer: str, claim: Claim) -> None:
    known = claims.get(customer)
    if known is None or (claim.created, claim.event_id) < (known.created, known.event_id):
        claims[customer] = claim


async def link_users_of(conn: AsyncConnection, touched: set[str], claims: dict[str, Claim]) -> None:
    """Record the batch's claims, then give each touched customer the user due to it (its newest
    snapshot's ``metadata.user_id``, else the earliest claim's user); where that changed, every row
    of the customer takes its user again."""
    if claims:
        params = [
            {"c_customer": customer, "c_user": c.user, "c_created": c.created, "c_event_id": c.event_id}
            for customer, c in sorted(claims.items())
        ]
        await conn.execute(claim_users(conn.dialect.name), params)
    customer_ids = sorted(touched | set(claims))
    if not customer_ids:
        return
    found = await conn.execute(link_users(conn.dialect.name), {"customers": customer_ids})
    changed = sorted(found.scalars())
    if not changed:
        return
    for kind_name in OWNED_BY_CUSTOMER:
        await conn.execute(rederive_users(kind_name, conn.dialect.name), {"customers": changed})
