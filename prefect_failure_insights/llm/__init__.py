"""Talking to LLMs: `backends` (OpenAI-compatible, Azure, Anthropic), `structured` (answers
that fit a schema, with one retry owner), `prompts` (every prompt, versioned), `costs`."""
