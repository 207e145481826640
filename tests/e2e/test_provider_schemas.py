"""The Google Cloud and Azure stacks against their providers' real schemas, offline.

``terraform validate`` needs the provider binaries, which this machine can't install for
google and azurerm (the AWS stack is validated and applied by terraform itself in
test_terraform_aws.py). Instead every resource and data source type, argument and nested
block of the modules and their examples is checked against the schema of the pinned provider
release (tests/support/provider-schemas.txt, extracted by ``make test``), with every required
argument present and each ``required_providers`` constraint admitting that release and no
later major. All problems are listed, one line each: file, address, argument path.
"""

from __future__ import annotations

import pytest

from tests.support.provider_schema import (
    ROOT,
    Schema,
    SchemaCacheError,
    check_configuration,
    load_schemas,
)

TERRAFORM = ROOT / "iac" / "terraform"
CLOUDS = ["gcp", "azure"]


@pytest.fixture(scope="module")
def schemas() -> dict[str, Schema]:
    try:
        return load_schemas()
    except SchemaCacheError as error:
        missing = str(error)
    pytest.fail(missing, pytrace=False)  # outside the except: one line, no traceback chain


@pytest.mark.parametrize("kind", ["modules", "examples"])
@pytest.mark.parametrize("cloud", CLOUDS)
def test_stack_fits_its_provider_schema(cloud: str, kind: str, schemas: dict[str, Schema]) -> None:
    folder = TERRAFORM / kind / cloud
    assert sorted(folder.glob("*.tf")), f"no .tf files in {folder}"
    problems = check_configuration(folder, schemas, module=kind == "modules")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
