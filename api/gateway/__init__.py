"""Every call to the Stripe API: the gateway protocol the billing actions use
(:mod:`~api.gateway.base`), the official SDK's client with idempotency keys and a circuit breaker
(:mod:`~api.gateway.stripe_client`), and Stripe's errors as messages for people
(:mod:`~api.gateway.errors`)."""
