"""Demo mode, without Stripe credentials: the simulator plays Stripe (:mod:`~api.demo.provider`)
and local pages stand in for Stripe Checkout and the billing portal (:mod:`~api.demo.pages`)."""
