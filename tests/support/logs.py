"""Log capture that sees every agentfn logger."""

from __future__ import annotations

import logging

import pytest


def debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    """Capture DEBUG from every logger, agentfn's included.

    Importing the AWS handlers creates the Powertools logger, whose name is the service name
    (``agentfn`` when unset) and whose level then caps every ``agentfn.*`` logger: setting the
    root level alone would let a "nothing leaks at DEBUG" test pass without seeing DEBUG.
    """
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="agentfn")
