"""The Streamlit business dashboard: the pages (``pages/``), what they read from the KPI engine
and the database (:mod:`~dashboards.data`), and their shared presentation
(:mod:`~dashboards.common`)."""
