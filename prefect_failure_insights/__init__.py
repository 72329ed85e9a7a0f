"""prefect-failure-insights: failure summaries for Prefect flow runs.

Importing this package does nothing but define names: no I/O, no block loading.
Defaults (flow and deployment names, schedules, budgets) are in `defaults`.
"""

__version__ = "0.1.0"
