"""What the service reports about itself to its operators, read from the layers below: the health
probes and their score (``/api/health``), the business and backlog gauges computed from the
database, and the ``/metrics`` exposition. Above the API's other layers, since it looks at them
all; the instruments themselves (metrics, tracing) are :mod:`api.observability`, at the bottom."""
