"""Masking: what is personal data or a secret becomes a tag, and what only looks like it (dates,
times, ids, versions, addresses of machines) stays; log lines of a masking tenant's work are
masked, others are not; a masked prompt log is never reused as a memo."""

from __future__ import annotations

import logging

import pytest

from agentfn.pii import install_log_masking, mask, mask_value, masking


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("write to ada.lovelace+ai@example.co.uk today", "write to [email] today"),
        ("call +1 415-555-0100 now", "call [phone] now"),
        ("call (020) 7946 0958", "call [phone]"),
        ("or 07700 900123.", "or [phone]."),
        ("pay with 4111 1111 1111 1111 please", "pay with [card] please"),
        ("card 5500-0000-0000-0004", "card [card]"),
        ("key sk-proj-abcdefghijklmnop1234", "key [secret]"),
        ("our afn_0123456789ab_" + "0" * 48 + " key", "our [secret] key"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "aws [secret] here"),
        ("token ghp_" + "a1" * 18, "token [secret]"),
    ],
)
def test_personal_data_and_secrets_become_tags(text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "on 2026-12-04 at 10:20:30",
        "at 1796413737.74962 s",
        "run run_001a2429a4b150b71469491 step plan@0",
        "version 1.12.3, 42 items, 3.14159",
        "from 192.168.100.200",
        "order 00123",
    ],
)
def test_what_only_looks_like_it_stays(text: str) -> None:
    assert mask(text) == text


def test_a_number_that_fails_the_luhn_check_is_no_card() -> None:
    assert "[card]" not in mask("4111 1111 1111 1112")


def test_nested_values_are_masked_keys_included() -> None:
    value = {"to": ["bob@example.com", 7], "bob@example.com": {"n": "+44 20 7946 0958"}}
    assert mask_value(value) == {"to": ["[email]", 7], "[email]": {"n": "[phone]"}}


def test_log_lines_are_masked_only_while_a_masking_tenant_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_masking()
    install_log_masking()  # idempotent
    log = logging.getLogger("agentfn.test.pii")
    with caplog.at_level(logging.INFO, logger="agentfn.test.pii"):
        log.info("mail %s", "eve@example.com", extra={"error": "card 4111 1111 1111 1111"})
        token = masking.set(True)
        try:
            log.info("mail %s", "eve@example.com", extra={"error": "card 4111 1111 1111 1111"})
            try:
                raise ValueError("bad key sk-live-abcdefghijklmnop1234")
            except ValueError:
                log.exception("failed for eve@example.com")
        finally:
            masking.reset(token)
    plain, masked, failed = caplog.records
    assert plain.getMessage() == "mail eve@example.com"
    assert plain.error == "card 4111 1111 1111 1111"  # type: ignore[attr-defined]
    assert masked.getMessage() == "mail [email]"
    assert masked.error == "card [card]"  # type: ignore[attr-defined]
    assert failed.getMessage() == "failed for [email]"
    formatted = logging.Formatter().format(failed)
    assert "sk-live" not in formatted and "[secret]" in formatted
