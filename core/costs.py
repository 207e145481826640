"""Cost tracking: turn token usage into money with a per-model price table.

Prices are USD per million tokens. The built-in table covers common models; a blueprint's
``prices:`` section overrides or extends it, so a deployment never needs a code change when a
provider changes its prices. Unknown models cost 0 and are reported as unpriced.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from agentfn.ports import Usage


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(input_per_mtok=2.50, output_per_mtok=10.00),
    "gpt-4o-mini": Price(input_per_mtok=0.15, output_per_mtok=0.60),
    "gpt-4.1": Price(input_per_mtok=2.00, output_per_mtok=8.00),
    "gpt-4.1-mini": Price(input_per_mtok=0.40, output_per_mtok=1.60),
    "gpt-4.1-nano": Price(input_per_mtok=0.10, output_per_mtok=0.40),
    "o4-mini": Price(input_per_mtok=1.10, output_per_mtok=4.40),
    # Amazon Bedrock, on-demand, by model id (a cross-region profile's "us."/"eu." prefix is
    # looked up without it)
    "anthropic.claude-3-haiku-20240307-v1:0": Price(input_per_mtok=0.25, output_per_mtok=1.25),
    "anthropic.claude-3-5-sonnet-20240620-v1:0": Price(input_per_mtok=3.00, output_per_mtok=15.00),
    "anthropic.claude-3-5-haiku-20241022-v1:0": Price(input_per_mtok=0.80, output_per_mtok=4.00),
    "amazon.nova-micro-v1:0": Price(input_per_mtok=0.035, output_per_mtok=0.14),
    "amazon.nova-lite-v1:0": Price(input_per_mtok=0.06, output_per_mtok=0.24),
    "amazon.nova-pro-v1:0": Price(input_per_mtok=0.80, output_per_mtok=3.20),
    # Gemini on Vertex AI, prompts up to 200k tokens (replies name a version: "-001" is priced
    # by its model's prefix)
    "gemini-2.5-pro": Price(input_per_mtok=1.25, output_per_mtok=10.00),
    "gemini-2.5-flash": Price(input_per_mtok=0.30, output_per_mtok=2.50),
    "gemini-2.5-flash-lite": Price(input_per_mtok=0.10, output_per_mtok=0.40),
    "gemini-2.0-flash": Price(input_per_mtok=0.15, output_per_mtok=0.60),
    "gemini-2.0-flash-lite": Price(input_per_mtok=0.075, output_per_mtok=0.30),
    # Azure OpenAI bills its models as OpenAI does (the gpt-4o/4.1 rows above); replies name
    # the model, not the deployment. Its name for GPT-3.5:
    "gpt-35-turbo": Price(input_per_mtok=0.50, output_per_mtok=1.50),
}
# Bedrock's cross-region inference profiles: "us.amazon.nova-lite-v1:0" costs what the model does.
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.")


class PriceTable:
    def __init__(self, overrides: Mapping[str, Price] | None = None) -> None:
        self._prices = {**DEFAULT_PRICES, **(overrides or {})}

    def price(self, model: str) -> Price | None:
        if model in self._prices:
            return self._prices[model]
        for prefix in _PROFILE_PREFIXES:
            if model.startswith(prefix) and model[len(prefix) :] in self._prices:
                return self._prices[model[len(prefix) :]]
        # Providers report dated snapshots ("gpt-4o-mini-2024-07-18"): use the longest prefix.
        matches = [name for name in self._prices if model.startswith(name + "-")]
        return self._prices[max(matches, key=len)] if matches else None

    def cost(self, model: str, usage: Usage) -> float:
        price = self.price(model)
        if price is None:
            return 0.0
        return (
            usage.prompt_tokens * price.input_per_mtok
            + usage.completion_tokens * price.output_per_mtok
        ) / 1_000_000
