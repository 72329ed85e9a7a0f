"""prefect-failure-insights: failure summaries for Prefect flow runs.

Importing this package does nothing but define names: no I/O, no block loading.
"""

__version__ = "0.1.0"

#: Flow names of the plugin's own flows. Their failures are never summarized:
#: a failing summarizer would otherwise trigger itself in a loop.
SUMMARIZER_FLOW = "summarize-failure"
BATCH_FLOW = "batch-insights"
OWN_FLOWS = (SUMMARIZER_FLOW, BATCH_FLOW)

#: Names of the deployments, as in prefect.yaml and `failure-insights serve`.
SUMMARIZER_DEPLOYMENT_NAME = "failure-insights"
BATCH_DEPLOYMENT_NAME = "batch-insights"
SUMMARIZER_DEPLOYMENT = f"{SUMMARIZER_FLOW}/{SUMMARIZER_DEPLOYMENT_NAME}"
BATCH_DEPLOYMENT = f"{BATCH_FLOW}/{BATCH_DEPLOYMENT_NAME}"

#: The batch deployment's default schedule (UTC), as in prefect.yaml: daily, for the 24 hours before.
BATCH_CRON = "0 6 * * *"
BATCH_HOURS = 24.0
