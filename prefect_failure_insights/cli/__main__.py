"""``python -m prefect_failure_insights.cli``: the same as ``failure-insights``."""

import sys

from prefect_failure_insights.cli import main

sys.exit(main())
