"""``Stripe-Signature`` verification with the stripe SDK, against any of the configured secrets."""

from __future__ import annotations

import time
from collections.abc import Sequence

import stripe

__all__ = ["SignatureRejected", "verify_signature"]


class SignatureRejected(ValueError):
    """The delivery is not provably from Stripe; the message says why, for a person."""


def _timestamp(header: str) -> int:
    """The header's one ``t`` entry, read the way the SDK reads it (``name=value`` pairs split on
    commas, names compared as they are), so the timestamp checked here is the one it verified.
    A header with more than one ``t`` is refused: two readers could take different ones."""
    stamps = [part.split("=", 2)[1] for part in header.split(",") if part.split("=", 2)[0] == "t" and "=" in part]
    if len(stamps) > 1:
        raise SignatureRejected("Stripe-Signature has more than one timestamp (`t=`); Stripe sends exactly one.")
    try:
        return int(stamps[0])
    except (IndexError, ValueError):
        raise SignatureRejected("Malformed Stripe-Signature header: expected `t=<timestamp>,v1=<signature>`.") from None


def verify_signature(payload: str, header: str | None, secrets: Sequence[str], tolerance: int) -> None:
    """Raise :class:`SignatureRejected` unless ``header`` signs ``payload`` (the raw body, decoded)
    with one of ``secrets`` at a timestamp within ``tolerance`` seconds of now."""
    if not header:
        raise SignatureRejected("Missing Stripe-Signature header.")
    stamp = _timestamp(header)
    reasons: list[str] = []
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            reasons.append(str(exc.user_message or exc))
            continue
        # The SDK rejects old timestamps only; a far-future one would let a captured delivery be
        # replayed for as long, so it is refused too.
        if stamp > time.time() + tolerance:
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
