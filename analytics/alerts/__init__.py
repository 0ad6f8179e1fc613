"""Business alerts: rules (``rules.toml``) over the KPIs and short windows of the log, evaluated
into the ``alerts`` table and delivered through apprise."""
