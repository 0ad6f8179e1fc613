"""The database: the tables (:mod:`~api.db.models`), the engine and its transactions with the one
retrying path (:mod:`~api.db.engine`), every SQLite / PostgreSQL difference in statements
(:mod:`~api.db.dialects`), and the migrations (:mod:`~api.db.migrate`)."""
