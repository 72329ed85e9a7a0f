"""Analysis: what a failure is and whose problem it is.

`summary` (the LLM, the fingerprint cache, budgets and the fallback, composed into a
summary), `fallback` (the deterministic analysis) and `facts` (what its fix steps name),
`fingerprint` (failure signatures), `rules` and `taxonomy` (named rules, categories),
`categorize` (the one classification of cards and batches), `model` and `training` (the learned
text model, its corpus and retraining), `classifier` (batch classification: corrections, the
classification, cache, LLM), `corrections` (the team's corrections from CSV), `suggest` (new
rules from corrections) and `evaluation` (measuring the classifier).
"""
