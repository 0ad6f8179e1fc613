"""The event log: a Stripe event (or a service event) as parsed and checked before it is stored
(:mod:`~api.events.model`), the one door to ``subscription_events`` (:mod:`~api.events.log`), and
the locks a transaction takes with it (:mod:`~api.events.locks`). Above the database and the
Stripe object model; below everything that reads or reacts to the log."""
