"""What an LLM answer cost: a price table, and the estimate per summary.

Prices are USD per million tokens, ``[input, output]``. The defaults below are list
prices of common models when this version was released; set ``llm_prices`` in the
settings block to correct or extend them (the settings win). A model without a price
has an unknown cost (``None``), which daily cost budgets treat as zero: set a daily
*token* budget for such models. Local servers (Ollama, llama.cpp, vLLM) cost nothing:
give their models a ``[0, 0]`` price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o4-mini": (1.10, 4.40),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
}


def price_for(model: str | None, overrides: Mapping[str, Sequence[float]] | None = None) -> tuple[float, float] | None:
    """The price of ``model``: an exact name, else the longest known prefix
    (``gpt-4o-mini-2024-07-18`` is priced as ``gpt-4o-mini``)."""
    if not model:
        return None
    table: dict[str, tuple[float, float]] = dict(DEFAULT_PRICES)
    for name, price in (overrides or {}).items():
        table[name] = (float(price[0]), float(price[1]))
    if model in table:
        return table[model]
    matches = [name for name in table if model.startswith(name)]
    return table[max(matches, key=len)] if matches else None


def estimate_cost(model: str | None, prompt_tokens: int | None, completion_tokens: int | None,
                  *, overrides: Mapping[str, Sequence[float]] | None = None) -> float | None:
    """USD for one answer, or None when the model's price is unknown."""
    price = price_for(model, overrides)
    if price is None:
        return None
    return round(((prompt_tokens or 0) * price[0] + (completion_tokens or 0) * price[1]) / 1_000_000, 6)
