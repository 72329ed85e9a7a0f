"""Everything the plugin reads from or writes to the Prefect API, through a ``PrefectClient``.

`paging` (the one paged-read loop), `runs` (the failed run, its root, subflows and task
runs), `logs` (waiting for late logs, streaming them), `baseline` (the last good run),
`secrets` (Secret block values), `failures` (a window's failed runs, for batches),
`artifacts` (summaries and reports on runs' pages), `concurrency` (the LLM limit) and
`deployments` (the batch's partition runs). Functions take a client as their first
argument; none of them uses Prefect's flow engine.
"""
