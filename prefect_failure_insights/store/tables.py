"""The plugin's tables, as the migrations leave them (`migrations` is their only definition)."""

from __future__ import annotations

from prefect_failure_insights.store.migrations import current_tables, schema_table

metadata = current_tables()

summaries = metadata.tables["failure_summaries"]
fingerprints = metadata.tables["failure_fingerprints"]
corrections = metadata.tables["failure_corrections"]
classifications = metadata.tables["failure_classifications"]
batch_runs = metadata.tables["batch_runs"]
batch_errors = metadata.tables["batch_errors"]
patterns = metadata.tables["failure_patterns"]
pattern_bands = metadata.tables["failure_pattern_bands"]
pattern_vectors = metadata.tables["failure_pattern_vectors"]
text_models = metadata.tables["text_models"]

__all__ = ["batch_errors", "batch_runs", "classifications", "corrections", "fingerprints", "metadata",
           "pattern_bands", "pattern_vectors", "patterns", "schema_table", "summaries", "text_models"]
