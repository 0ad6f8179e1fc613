"""Stripe as the source of truth: bringing an existing account into the log (``faddl sync``).

What the sync walks and how each object becomes a snapshot (:mod:`~api.sync.resources`,
:mod:`~api.sync.snapshots`), its resumable state in the database (:mod:`~api.sync.state`), and
the walk itself (:mod:`~api.sync.account`). Above ingest (every snapshot goes into the log through
the processor, ordered against webhook deliveries by the usual rule) and the gateway (every read of
Stripe goes through :mod:`api.gateway.reading`)."""
