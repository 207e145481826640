from __future__ import annotations

import pytest

from agentfn.costs import Price, PriceTable
from agentfn.ports import Usage


def test_cost_from_price_table() -> None:
    table = PriceTable({"mine": Price(input_per_mtok=1.0, output_per_mtok=3.0)})
    assert table.cost("mine", Usage(prompt_tokens=1_000_000, completion_tokens=500_000)) == 2.5
    assert table.cost(
        "gpt-4o-mini", Usage(prompt_tokens=1000, completion_tokens=1000)
    ) == pytest.approx(0.00075)


def test_dated_snapshots_use_the_longest_prefix() -> None:
    table = PriceTable()
    assert table.price("gpt-4o-mini-2024-07-18") == table.price("gpt-4o-mini")
    assert table.price("gpt-4o-2024-08-06") == table.price("gpt-4o")


def test_bedrock_models_are_priced_and_profiles_cost_what_their_model_does() -> None:
    table = PriceTable()
    haiku = table.price("anthropic.claude-3-haiku-20240307-v1:0")
    assert haiku == Price(input_per_mtok=0.25, output_per_mtok=1.25)
    assert table.price("us.anthropic.claude-3-haiku-20240307-v1:0") == haiku
    assert table.price("eu.amazon.nova-lite-v1:0") == table.price("amazon.nova-lite-v1:0")
    assert table.price("xx.amazon.nova-lite-v1:0") is None


def test_gemini_versions_cost_what_their_model_does_and_overrides_win() -> None:
    table = PriceTable()
    flash = Price(input_per_mtok=0.15, output_per_mtok=0.60)
    assert table.price("gemini-2.0-flash-001") == flash  # what Vertex AI replies name
    lite = table.price("gemini-2.0-flash-lite-001")
    assert lite == Price(input_per_mtok=0.075, output_per_mtok=0.30)  # the longer prefix
    assert table.price("gemini-2.5-pro") == Price(input_per_mtok=1.25, output_per_mtok=10.00)
    cheaper = Price(input_per_mtok=0.1, output_per_mtok=0.1)
    assert PriceTable({"gemini-2.0-flash": cheaper}).price("gemini-2.0-flash-001") == cheaper


def test_azure_openai_replies_are_priced_by_the_model_they_name() -> None:
    table = PriceTable()
    assert table.price("gpt-4o-2024-11-20") == table.price("gpt-4o")
    assert table.price("gpt-35-turbo-0125") == Price(input_per_mtok=0.50, output_per_mtok=1.50)


def test_unknown_models_cost_nothing() -> None:
    table = PriceTable()
    assert table.price("llama3") is None
    assert table.cost("llama3", Usage(prompt_tokens=10, completion_tokens=10)) == 0.0


def test_prices_cannot_be_negative() -> None:
    with pytest.raises(ValueError):
        Price(input_per_mtok=-1, output_per_mtok=0)
