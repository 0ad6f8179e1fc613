"""``Stripe-Signature`` verification with the stripe SDK, against any of the configured secrets."""

from __future__ import annotations

import time
from collections.abc import Sequence

import stripe

__all__ = ["SignatureRejected", "verify_signature"]


class SignatureRejected(ValueError):
    """The delivery is not provably from Stripe; the message says why, for a person."""


def _timestamp(header: str) -> int | None:
    for part in header.split(","):
        name, _, value = part.partition("=")
        if name.strip() == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def verify_signature(payload: str, header: str | None, secrets: Sequence[str], tolerance: int) -> None:
    """Raise :class:`SignatureRejected` unless ``header`` signs ``payload`` (the raw body, decoded)
    with one of ``secrets`` at a timestamp within ``tolerance`` seconds of now."""
    if not header:
        raise SignatureRejected("Missing Stripe-Signature header.")
    reasons: list[str] = []
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            reasons.append(str(exc.user_message or exc))
            continue
        # The SDK rejects old timestamps only; a far-future one would let a captured delivery be
        # replayed for as long, so it is refused too.
        stamp = _timestamp(header)
        if stamp is not None and stamp > time.time() + tolerance:
            raise SignatureRejected(
                f"Stripe-Signature timestamp is more than {tolerance} s in the future; check the clock."
            )
        return
    if any("tolerance" in reason for reason in reasons):
        raise SignatureRejected(
            f"Stripe-Signature timestamp is older than {tolerance} s (a stale or replayed delivery)."
        )
    if any("Unable to extract" in reason or "No signatures found with expected scheme" in reason for reason in reasons):
        raise SignatureRejected("Malformed Stripe-Signature header: expected `t=<timestamp>,v1=<signature>`.")
    raise SignatureRejected("Stripe-Signature does not match the body for any configured webhook secret.")
