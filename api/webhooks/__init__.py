"""``POST /api/webhooks/stripe``: signature verification (:mod:`~api.webhooks.signature`), what a
delivery must be to be stored (:mod:`~api.webhooks.receiver`) and the route
(:mod:`~api.webhooks.controller`)."""
