"""Stripe, played: a deterministic SaaS history as Stripe events (:mod:`~simulator.engine`) with
its own ground truth (:mod:`~simulator.truth`), Stripe-shaped objects in both API shapes
(:mod:`~simulator.objects`), single actions for demo mode (:mod:`~simulator.live`) and delivery
the way Stripe delivers (:mod:`~simulator.delivery`). It imports nothing of the service."""
