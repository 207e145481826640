"""Session-wide test setup: emulators started by any test are stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.emulators import stop_all


@pytest.fixture(scope="session", autouse=True)
def _stop_emulators_at_the_end() -> Iterator[None]:
    yield
    stop_all()
