"""The versioned price table that turns LLM token counts into cost events.

A change of price is a new PRICE_VERSION, so every cost event says which table priced it.
"""

from __future__ import annotations

import math

PRICE_VERSION = "2026-11-01"

# Micro-dollars per million tokens: (input, output).
MODEL_PRICES: dict[str, tuple[int, int]] = {
    "claude-sonnet-4-5": (3_000_000, 15_000_000),
    "claude-haiku-4-5": (1_000_000, 5_000_000),
    "claude-opus-4-1": (15_000_000, 75_000_000),
}
# What an unknown model is charged at: the dearest known price, never zero.
FALLBACK_PRICE = max(MODEL_PRICES.values())


def llm_cost_microusd(model: str, input_tokens: int, output_tokens: int) -> int:
    """The cost of one model call, rounded up to the micro-dollar."""
    price_in, price_out = MODEL_PRICES.get(model, FALLBACK_PRICE)
    return math.ceil((input_tokens * price_in + output_tokens * price_out) / 1_000_000)
