"""The plan catalogue (:mod:`~api.catalogue.plans`): which Stripe prices exist, what each plan is
called and its feature limits. Below billing, the operator gauges and the KPI engine, which all
read it."""
