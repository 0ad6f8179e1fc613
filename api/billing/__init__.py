"""Billing for the client apps, over the plan catalogue (:mod:`api.catalogue`): the caller's
subscription and entitlements (:mod:`~api.billing.subscriptions`), usage and its limits
(:mod:`~api.billing.usage`), the actions on a subscription (:mod:`~api.billing.actions`), the
allowed return URLs (:mod:`~api.billing.return_urls`) and the thin routes over them
(:mod:`~api.billing.controller`)."""
