"""``failure-insights serve``: the plugin's deployments, its automation, and an in-process
executor for their runs (`service`, `executor`)."""
