"""Every stack gives a step less time than its function has, so the engine ends a long step
(StepTimeout, retried) before the platform kills the invocation in the middle of it."""

from __future__ import annotations

import pytest

from agentfn.settings import Settings
from tests.support.stacks import stack_environment, stack_values

FUNCTION_TIMEOUT = {
    "aws": ("aws_lambda_function", ("timeout",)),
    "gcp": ("google_cloudfunctions2_function", ("service_config", "timeout_seconds")),
}
NAMES = {"name": "stack", "region": "r", "location": "l", "project": "p"}


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_the_step_timeout_is_below_the_function_timeout(cloud: str) -> None:
    env = stack_environment(cloud, NAMES)
    settings = Settings.from_env(env)
    lease = float(env["AGENTFN_LEASE_S"])
    if cloud in FUNCTION_TIMEOUT:
        rtype, path = FUNCTION_TIMEOUT[cloud]
        timeouts = set(stack_values(cloud, rtype, *path).values())
        assert timeouts == {"${var.timeout_s}"}, timeouts
    else:  # Azure: the host's functionTimeout app setting, formatted from var.timeout_s
        host = stack_environment(cloud, NAMES, local="host_settings")
        assert "var.timeout_s" in host["AzureFunctionsJobHost__functionTimeout"]
    assert (
        env["AGENTFN_LEASE_S"]
        == stack_environment(cloud, {**NAMES, "timeout_s": "60"})["AGENTFN_LEASE_S"]
    )
    function_timeout = lease  # every stack leases a step for its function's timeout
    assert 0 < settings.step_timeout_s < function_timeout
    assert function_timeout - settings.step_timeout_s >= 5
