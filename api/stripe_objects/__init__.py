"""What a Stripe object is, apart from where it is stored: its fields across API versions
(:mod:`~api.stripe_objects.fields`), its kind, status rank and terminal states
(:mod:`~api.stripe_objects.kinds`), and the order of its snapshots, within one second too
(:mod:`~api.stripe_objects.ordering`). The lowest layer: events, projections and analytics all
read Stripe objects through it, and it imports nothing of theirs."""
