"""Which search index each stack's functions recall remembered facts with
(``AGENTFN_MEMORY_SEARCH``, ``agentfn.memory_search``).

A deployer names one with the ``memory_search`` variable (``file.py:factory`` of the deployed
project); left unset, the functions get none and recall matches text. The environment is the
one the artifacts are booted with (``stack_environment``), with the variable left unset and
then set; a value that names no file inside the project is refused by the variable's own
validation rule, which Terraform applies (``terraform_value``).
"""

from __future__ import annotations

import pytest

from agentfn.settings import Settings
from tests.support.stacks import app_settings, stack_environment, stack_values, terraform_value

CLOUDS = ["aws", "gcp", "azure"]
NAMES = {"name": "stack", "region": "r", "location": "l", "project": "p"}
SEARCH = "search.py:build"
# cloud -> (the functions' resource type, where their environment is), Azure aside
FUNCTIONS = {
    "aws": ("aws_lambda_function", ("environment", "variables")),
    "gcp": ("google_cloudfunctions2_function", ("service_config", "environment_variables")),
}


def functions_environment(cloud: str, variables: dict[str, str]) -> list[dict[str, str]]:
    """The environment of each of the stack's functions (both of them)."""
    if cloud == "azure":
        return [app_settings(app, variables) for app in ("http", "worker")]
    rtype, path = FUNCTIONS[cloud]
    assert set(stack_values(cloud, rtype, *path).values()) == {"${local.environment}"}
    environment = stack_environment(cloud, variables)
    return [environment, environment]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_by_default_the_functions_have_no_search_index(cloud: str) -> None:
    for env in functions_environment(cloud, NAMES):
        # set to "" (as Settings reads an unset one): a map of the stack cannot leave a key out
        assert env.get("AGENTFN_MEMORY_SEARCH", "") == ""
        assert Settings.from_env(env).memory_search == ""


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_named_search_index_reaches_both_functions(cloud: str) -> None:
    assert terraform_value(cloud, "var.memory_search", {"memory_search": SEARCH}) == SEARCH
    for env in functions_environment(cloud, {**NAMES, "memory_search": SEARCH}):
        assert env["AGENTFN_MEMORY_SEARCH"] == SEARCH
        assert Settings.from_env(env).memory_search == SEARCH


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_file_in_a_folder_of_the_project_is_accepted(cloud: str) -> None:
    spec = "memory/vector_store.py:make_index"
    assert terraform_value(cloud, "var.memory_search", {"memory_search": spec}) == spec


@pytest.mark.parametrize(
    "bad",
    [
        "../x.py:build",  # outside the project folder
        "lib/../search.py:build",  # ".." anywhere
        "/srv/search.py:build",  # an absolute path
        "search.py",  # no factory
        "search.py:2build",  # a factory that is no Python name
        "search:build",  # no Python file
    ],
)
@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_bad_memory_search_is_refused(cloud: str, bad: str) -> None:
    with pytest.raises(AssertionError, match="memory_search must be"):
        terraform_value(cloud, "var.memory_search", {"memory_search": bad})
