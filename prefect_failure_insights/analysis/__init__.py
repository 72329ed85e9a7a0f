"""Analysis: what a failure is and whose problem it is.

`summary` (the LLM, the fingerprint cache, budgets and the fallback, composed into a
summary), `fallback` (the deterministic analysis), `fingerprint` (failure signatures),
`rules` and `taxonomy` (named rules, categories), `classifier` (batch classification:
corrections, rules, cache, LLM), `corrections` (the team's corrections from CSV),
`suggest` (new rules from corrections) and `evaluation` (measuring the classifier).
"""
