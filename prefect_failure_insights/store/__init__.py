"""The plugin's rows in the user's SQL database (SQLite, PostgreSQL, any SQLAlchemy database).

All SQL of the plugin lives in this package: the tables (defined by their named, ordered
`migrations`), the mapping of models to rows (`mapping`), and one module per table
family: `summaries`, `fingerprints` (the analysis cache), `classifications`,
`corrections`, `batches`, and the cost `ledger`. Functions take a SQLAlchemy ``Engine``
and block; async callers go through `Database.run`, which calls them in a worker thread.
"""

from prefect_failure_insights.store.database import Database

__all__ = ["Database"]
