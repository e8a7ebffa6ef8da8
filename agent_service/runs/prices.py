"""The versioned price table that turns LLM token counts into cost events.

A change of price is a new PRICE_VERSION, so every cost event says which table priced it.

The table was checked on 2026-12-03 against Anthropic's published prices
(platform.claude.com/docs: the pricing page, each model's page, and the Claude Sonnet 5.5
migration guide, which says Sonnet 5.5 costs what Sonnet 5 does except cache reads at
$0.10 per million tokens) and the official `anthropic` Python SDK 2.10.0 (November 2026:
types/model_param.py lists the ids; resources/messages/messages.py DEPRECATED_MODELS gives
claude-sonnet-4-5 its end of life on 30 November 2026, so it is no longer here).

The Messages API counts one call's input three ways, each priced on its own:
`input_tokens` (after the last cache breakpoint: base price), `cache_creation_input_tokens`
(written to the 5-minute cache: 1.25x base for every model here) and
`cache_read_input_tokens` (read from the cache: 0.1x base for most models, but 0.05x for
Sonnet 5.5 and Opus 5.5, which is why the table gives each price rather than a multiplier).
Hapex writes only 5-minute cache entries (cache_control without a ttl).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PRICE_VERSION = "2026-12-03"


@dataclass(frozen=True)
class ModelPrice:
    """Micro-dollars per million tokens."""

    input: int
    cache_write_5m: int
    cache_read: int
    output: int


MODEL_PRICES: dict[str, ModelPrice] = {
    # Claude Sonnet 5.5 (released 28 September 2026): the default, see DEFAULT_LLM_MODEL.
    "claude-sonnet-5-5": ModelPrice(input=2_000_000, cache_write_5m=2_500_000, cache_read=100_000, output=10_000_000),
    "claude-sonnet-5": ModelPrice(input=2_000_000, cache_write_5m=2_500_000, cache_read=200_000, output=10_000_000),
    "claude-opus-5-5": ModelPrice(input=4_000_000, cache_write_5m=5_000_000, cache_read=200_000, output=20_000_000),
    "claude-opus-5": ModelPrice(input=5_000_000, cache_write_5m=6_250_000, cache_read=500_000, output=25_000_000),
    "claude-haiku-4-5": ModelPrice(input=1_000_000, cache_write_5m=1_250_000, cache_read=100_000, output=5_000_000),
}
# Claude Haiku 5.5 is left out on purpose: its price depends on each request's prompt length
# (one price up to 100,000 tokens, five times it above), which this table does not model.

# The model of every LLM step and of the build chat unless HAPEX_LLM_MODEL names another
# model of the table: Anthropic's current Sonnet, its "best combination of speed and
# intelligence", at the same price as Sonnet 5 and with the cheapest cache reads.
DEFAULT_LLM_MODEL = "claude-sonnet-5-5"

# What a model the table does not know is charged at (a dated id in a response, say): the
# dearest known price, never zero. A configured model must be in the table (AgentConfig).
FALLBACK_PRICE = max(MODEL_PRICES.values(), key=lambda price: (price.output, price.input))


def model_price(model: str) -> ModelPrice:
    return MODEL_PRICES.get(model, FALLBACK_PRICE)


def llm_cost_microusd(model: str, input_tokens: int, output_tokens: int, cache_creation_input_tokens: int = 0,
                      cache_read_input_tokens: int = 0) -> int:
    """The cost of one model call, rounded up to the micro-dollar."""
    price = model_price(model)
    return math.ceil((input_tokens * price.input + cache_creation_input_tokens * price.cache_write_5m
                      + cache_read_input_tokens * price.cache_read + output_tokens * price.output) / 1_000_000)
