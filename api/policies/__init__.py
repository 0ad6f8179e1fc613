"""Policies: what reacts to events by writing new ones to the log (a payment escalated to a
person). The processor runs them after applying a batch to the projections, in the same
transaction; projections themselves only ever write their own tables."""
