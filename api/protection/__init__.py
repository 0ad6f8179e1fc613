"""What every request passes (assembled by :mod:`~api.protection.layers`): the edge, the guard
(blocked clients, rate limits, failed authentications), idempotency keys, input screening, and the
security incidents they record."""
