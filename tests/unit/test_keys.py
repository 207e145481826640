"""Key validation: the one-scan fast path refuses exactly what the detailed checks name."""

from __future__ import annotations

import pytest

from agentfn.errors import UserError
from agentfn.keys import check_path


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a\x00b", "contains a NUL character"),
        ("a\\b\x00", "contains a NUL character"),
        ("a\x01b", "contains a control character"),
        ("a\x1f", "contains a control character"),
        ("a\x7fb", "contains a control character"),
        ("a\\b\x02", "contains a control character"),
        ("a\\b", "contains a backslash; use '/'"),
        ("/a", "is absolute"),
        ("a//b", "contains an empty or '.' segment"),
        ("a/../b", "contains a '..' segment"),
    ],
)
def test_a_bad_key_is_refused_with_its_problem_named(value: str, problem: str) -> None:
    with pytest.raises(UserError) as caught:
        check_path(value, "key", allow_empty=False)
    assert problem in caught.value.message and caught.value.field == "key"


@pytest.mark.parametrize("value", ["runs/run_1/steps/a%5B0%5D.json", "é/ü/ß", "a b/c~d@e"])
def test_a_plain_key_passes_and_splits_into_segments(value: str) -> None:
    assert check_path(value, "key", allow_empty=False) == value.split("/")
