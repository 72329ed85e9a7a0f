"""The summarizer's lifecycle: one summary per failure, whatever dies.

`context` (`SummarizerRun`: a summary in progress, built once and passed to every stage),
`claims` (the row a summarizer claims before any LLM call, its lease, renewed while it works,
and its release), `reconciler` (dead summarizers replaced, expired claims freed, missing
summaries started).
"""
