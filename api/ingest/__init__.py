"""Ingest: an event in, durable and applied. The processor stores each event in the log with its
locks held, applies it to the projections, runs the policies, all in one transaction (several
deliveries share one: group commit); retries what failed, and replays the whole log."""
