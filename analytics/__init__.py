"""SaaS KPIs computed from the event log alone (``docs/kpis.md``): one implementation
that the CLI, the dashboard, the notebooks, the admin API and the alerts all read."""
