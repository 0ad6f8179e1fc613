"""Projections: the tables that are a function of the log (customers, subscriptions, invoices,
invoice payments, charges, refunds, disputes, usage), written only here and rebuilt by replay.
:mod:`~api.projections.projector` applies events (newest snapshot wins), with its prepared
statements (:mod:`~api.projections.statements`), each kind's table (:mod:`~api.projections.kinds`),
whose rows they are (:mod:`~api.projections.users`) and the usage counters
(:mod:`~api.projections.usage`). They read the log and write nothing else."""
