"""The offline schema check on small hand-written schemas and assemblies (no network)."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.support.provider_schema import (
    Block,
    Body,
    Constraint,
    Schema,
    SchemaCacheError,
    Version,
    check_body,
    check_configuration,
    check_constraint,
    extract,
    load_schemas,
    main,
    pins,
    schema_from_assembly,
)

# ------------------------------------------------------------------ constraints


@pytest.mark.parametrize(
    ("constraint", "version", "admitted"),
    [
        (">= 5.20, < 6.0", "5.20.0", True),
        (">= 5.20, < 6.0", "5.99.3", True),
        (">= 5.20, < 6.0", "6.0.0", False),
        (">= 5.20, < 6.0", "5.19.9", False),
        ("~> 8.7", "8.7.0", True),
        ("~> 8.7", "8.99.0", True),
        ("~> 8.7", "9.0.0", False),
        ("~> 8.7", "8.6.9", False),
        ("~> 8.7.1", "8.7.5", True),
        ("~> 8.7.1", "8.8.0", False),
        ("~> 8", "8.0.0", True),
        ("~> 8", "8.12.0", True),
        ("~> 8", "9.0.0", False),
        ("8.7.0", "8.7.0", True),
        ("8.7.0", "8.7.1", False),
        ("= 8.7", "8.7.4", True),  # a missing segment is a wildcard
        ("= 8.7", "8.8.0", False),
        ("!= 8.7.0", "8.7.0", False),
        ("!= 8.7.0", "8.7.1", True),
        ("> 8.7", "8.7.9", False),  # past every 8.7.x
        ("> 8.7", "8.8.0", True),
        ("> 8.7.0", "8.7.1", True),
        ("<= 8", "8.99.0", True),
        ("<= 8", "9.0.0", False),
        ("<= 8.7.0", "8.7.0", True),
        (">= 8.0", "9.0.0-beta1", False),  # a pre-release only when named exactly
        ("= 9.0.0-beta1", "9.0.0-beta1", True),
        (">=8.0,<9.0", "8.5.0", True),  # spaces are optional
    ],
)
def test_constraint_admits_as_terraform_does(constraint: str, version: str, admitted: bool) -> None:
    assert Constraint.parse(constraint).admits(Version.parse(version)[0]) is admitted


@pytest.mark.parametrize(
    ("constraint", "later_major"),
    [
        (">= 8.7, < 9.0", False),
        (">= 8.7, < 9", False),
        ("~> 8.7", False),
        ("~> 8.7.0", False),
        ("~> 8", False),
        ("= 8.7.0", False),
        ("<= 8", False),
        (">= 8.7, <= 8.99.99", False),
        (">= 8.7", True),
        (">= 8.7, < 10.0", True),
        ("<= 9", True),
        (">= 8.7, != 9.0.0", True),  # one excluded release still lets 9.0.1 in
        (">= 8.7, != 9.0.0, != 9.0.1", True),
        (">= 8.7, <= 9.0.0", True),
        (">= 8.7, < 9.0.0-alpha", False),
        ("> 8.7", True),
    ],
)
def test_constraint_admits_a_later_major(constraint: str, later_major: bool) -> None:
    assert Constraint.parse(constraint).admits_above(8) is later_major


@pytest.mark.parametrize("text", ["", ">= 8.7,", "=> 8.7", "~> eight", ">= 8.7 < 9.0", "8.7.0.1"])
def test_malformed_constraints_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Constraint.parse(text)


def test_check_constraint_names_each_problem() -> None:
    assert check_constraint(">= 8.7, < 9.0", "8.7.0") == []
    assert check_constraint(">= 5.20, < 6.0", "8.7.0") == [
        "'>= 5.20, < 6.0' does not admit 8.7.0, the version checked"
    ]
    assert check_constraint(">= 8.0", "8.7.0") == [
        "'>= 8.0' admits a major later than 8, never checked"
    ]
    assert check_constraint(">= 3.100", "5.10.0") == [
        "'>= 3.100' admits a major later than 5, never checked"
    ]
    assert check_constraint(None, "8.7.0") == [
        "no version constraint: any major would be installed"
    ]


# ------------------------------------------------------------------ bodies against a schema


def _block(
    required: bool = False,
    single: bool = False,
    arguments: dict[str, bool] | None = None,
    blocks: dict[str, Block] | None = None,
    same_as: int | None = None,
) -> Block:
    block: Block = {
        "required": required,
        "nesting": "single" if single else "list",
        "arguments": {k: {"required": r} for k, r in (arguments or {}).items()},
        "blocks": blocks or {},
    }
    if single:
        block["max_items"] = 1
    if same_as is not None:
        block["same_as"] = same_as
    return block


BUCKET: Body = {
    "arguments": {"name": {"required": True}, "location": {"required": False}},
    "blocks": {
        "rule": _block(
            arguments={"age": False},
            blocks={"action": _block(required=True, single=True, arguments={"type": True})},
        ),
        "versioning": _block(single=True, arguments={"enabled": True}),
        "site": _block(required=True, single=True, arguments={"tier": False}),
        "tree": _block(arguments={"leaf": False}, blocks={"child": _block(same_as=1)}),
    },
}
META = {"count", "lifecycle", "depends_on", "for_each", "provider"}


def problems_of(hcl: str) -> list[str]:
    doc = hcl2.loads(f'resource "bucket" "b" {{\n{hcl}\n}}\n')
    body = doc["resource"][0]['"bucket"']['"b"']
    return check_body(body, BUCKET, "", META)


def test_a_body_that_fits_has_no_problems() -> None:
    assert (
        problems_of(
            """
            name = "x"
            count = 2
            depends_on = [a.b]
            lifecycle { ignore_changes = [name] }
            site {}
            rule {
              age = 3
              action { type = "Delete" }
            }
            rule {
              action { type = "Keep" }
            }
            tree {
              child {
                leaf = 1
                child { leaf = 2 }
              }
            }
            """
        )
        == []
    )


def test_unknown_and_missing_arguments_are_named_by_path() -> None:
    assert problems_of(
        """
        colour = "red"
        site { tier = 1 }
        rule {
          age = 3
          speed = 9
          action {}
        }
        rule {}
        """
    ) == [
        "colour: unknown argument",
        "name: required argument missing",
        "rule[0].speed: unknown argument",
        "rule[0].action.type: required argument missing",
        "rule[1].action: required block missing",
    ]


def test_required_block_missing_and_single_block_repeated() -> None:
    assert problems_of(
        """
        name = "x"
        versioning { enabled = true }
        versioning { enabled = false }
        """
    ) == [
        "site: required block missing",
        "versioning: 2 blocks, at most 1 allowed",
    ]


def test_blocks_and_arguments_are_not_interchangeable() -> None:
    assert problems_of(
        """
        name = "x"
        site = { tier = 1 }
        location { region = "eu" }
        """
    ) == [
        "site: is a block, not an argument (write `site { … }`)",
        "location: is an argument, not a block (write `location = …`)",
        "site: required block missing",
    ]


def test_dynamic_blocks_count_by_their_label_and_their_content_is_checked() -> None:
    assert problems_of(
        """
        name = "x"
        dynamic "site" {
          for_each = var.sites
          content { tier = site.value }
        }
        dynamic "rule" {
          for_each = var.rules
          iterator = r
          content {
            age = r.value
            colour = 1
            action { type = "Delete" }
          }
        }
        dynamic "wheel" {
          for_each = var.wheels
          content {}
        }
        """
    ) == [
        "dynamic.wheel: unknown block",
        "dynamic.rule.content.colour: unknown argument",
    ]


def test_a_recursive_block_is_checked_against_its_enclosing_body() -> None:
    assert problems_of(
        """
        name = "x"
        site {}
        tree {
          child {
            leaf = 1
            child { twig = 2 }
          }
        }
        """
    ) == ["tree[0].child[0].child[0].twig: unknown argument"]


# ------------------------------------------------------------------ extraction from an assembly

DOCS = "https://registry.terraform.io/providers/hashicorp/demo/2.3.0/docs"


def _prop(name: str, jsii_type: dict[str, Any], anchor: str | None, optional: bool = True) -> Any:
    remarks = f"Docs at Terraform Registry: {{@link {DOCS}/resources/demo_thing#{anchor} DemoThing#{anchor}}}"
    prop: dict[str, Any] = {
        "name": name,
        "type": jsii_type,
        "docs": {"remarks": remarks if anchor else ""},
    }
    if optional:
        prop["optional"] = True
    return prop


def _struct(fqn: str, *props: Any) -> dict[str, Any]:
    return {"fqn": fqn, "kind": "interface", "datatype": True, "properties": list(props)}


def _class(fqn: str, base: str, link: str, config: str, *getters: str) -> dict[str, Any]:
    properties = [{"name": "tfResourceType", "static": True}]
    properties += [{"name": g} for g in getters]
    return {
        "fqn": fqn,
        "kind": "class",
        "base": base,
        "properties": properties,
        "docs": {"summary": f"Represents a {{@link {link}}}."},
        "initializer": {
            "parameters": [{"name": "scope"}, {"name": "config", "type": {"fqn": config}}]
        },
    }


STRING = {"primitive": "string"}


def _list_of(fqn: str) -> dict[str, Any]:
    return {
        "union": {
            "types": [
                {"fqn": "cdktn.IResolvable"},
                {"collection": {"kind": "array", "elementtype": {"fqn": fqn}}},
            ]
        }
    }


ASSEMBLY: dict[str, Any] = {
    "types": {
        t["fqn"]: t
        for t in [
            _class(
                "demo.Thing",
                "cdktn.TerraformResource",
                f"{DOCS}/resources/thing demo_thing",
                "demo.ThingConfig",
                "name",
                "nameInput",
                "fetchhDetails",
                "selfLink",  # computed only
                "buildAttribute",  # computed `build`, renamed: it clashes with a method
                "fetchValue",  # computed `get_value`
                "crc32C",
            ),
            _struct(
                "demo.ThingConfig",
                _prop("name", STRING, "name", optional=False),
                _prop("fetchhDetails", STRING, "geth_details"),  # cdktn renames get_* to fetch*
                _prop("use32BitWorker", STRING, None),  # no registry link: from the camelCase
                _prop("settings", {"fqn": "demo.ThingSettings"}, "settings", optional=False),
                _prop("rule", _list_of("demo.ThingRule"), "rule"),
                _prop("labels", {"collection": {"kind": "map", "elementtype": STRING}}, "labels"),
                _prop("other", {"fqn": "cdktn.IResolvable"}, "other"),
            ),
            _struct("demo.ThingSettings", _prop("tier", STRING, "tier", optional=False)),
            _struct(
                "demo.ThingRule",
                _prop("age", STRING, "age"),
                _prop("rule", _list_of("demo.ThingRule"), "rule"),
            ),
            _class(
                "demo.DataThing",
                "cdktn.TerraformDataSource",
                f"{DOCS}/data-sources/thing demo_thing",
                "demo.DataThingConfig",
                "name",
                "projectNumber",
            ),
            _struct("demo.DataThingConfig", _prop("name", STRING, "name")),
            _class(
                "demo.Provider", "cdktn.TerraformProvider", f"{DOCS} demo", "demo.ProviderConfig"
            ),
            _struct("demo.ProviderConfig", _prop("region", STRING, "region")),
            {"fqn": "demo.ThingRuleList", "kind": "class", "base": "cdktn.ComplexList", "docs": {}},
        ]
    }
}

EXPECTED: Schema = {
    "format": 2,
    "provider": "demo",
    "source": "hashicorp/demo",
    "version": "2.3.0",
    "package": "cdktn-provider-demo",
    "package_version": "1.0.0",
    "provider_config": {"arguments": {"region": {"required": False}}, "blocks": {}},
    "resources": {
        "demo_thing": {
            "arguments": {
                "name": {"required": True},
                "geth_details": {"required": False},
                "use32_bit_worker": {"required": False},
                "labels": {"required": False},
                "other": {"required": False},
            },
            "blocks": {
                "settings": {
                    "required": True,
                    "nesting": "single",
                    "max_items": 1,
                    "arguments": {"tier": {"required": True}},
                    "blocks": {},
                },
                "rule": {
                    "required": False,
                    "nesting": "list",
                    "arguments": {"age": {"required": False}},
                    "blocks": {
                        "rule": {
                            "required": False,
                            "nesting": "list",
                            "arguments": {},
                            "blocks": {},
                            "same_as": 1,
                        }
                    },
                },
            },
            "attributes": [
                "build",
                "build_attribute",
                "crc32_c",
                "fetch_value",
                "get_value",
                "geth_details",
                "id",
                "labels",
                "name",
                "other",
                "rule",
                "self_link",
                "settings",
                "use32_bit_worker",
            ],
        }
    },
    "data_sources": {
        "demo_thing": {
            "arguments": {"name": {"required": False}},
            "blocks": {},
            "attributes": ["id", "name", "project_number"],
        }
    },
    "ephemeral_resources": {},
}


def test_schema_from_assembly_reads_arguments_blocks_and_names() -> None:
    assert schema_from_assembly(ASSEMBLY, "cdktn-provider-demo", "1.0.0") == EXPECTED


def test_an_assembly_naming_two_provider_versions_is_refused() -> None:
    assembly = json.loads(json.dumps(ASSEMBLY))
    assembly["types"]["demo.DataThing"]["docs"]["summary"] = (
        "Represents a {@link https://registry.terraform.io/providers/hashicorp/demo/2.4.0/docs/data-sources/thing demo_thing}."
    )
    with pytest.raises(ValueError, match="not one"):
        schema_from_assembly(assembly, "cdktn-provider-demo", "1.0.0")


def _wheel(folder: Path, assembly: dict[str, Any]) -> Path:
    raw = json.dumps(assembly).encode()
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/.jsii")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    wheel = folder / "cdktn_provider_demo-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as whl:
        whl.writestr("cdktn_provider_demo/_jsii/provider-demo@1.0.0.jsii.tgz", tgz.getvalue())
    return wheel


def test_extract_writes_the_compact_schema_of_a_wheel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = _wheel(tmp_path, ASSEMBLY)
    assert main(["extract", "--out", str(tmp_path / "out"), str(wheel)]) == 0
    assert "hashicorp/demo 2.3.0, 1 resources, 1 data sources" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "cdktn-provider-demo.json").read_text()) == EXPECTED
    assert extract(wheel, tmp_path / "again").name == "cdktn-provider-demo.json"


# ------------------------------------------------------------------ the cache


def test_pins_read_name_and_version(tmp_path: Path) -> None:
    (tmp_path / "pins.txt").write_text("# comment\ncdktn-provider-demo==1.0.0  # why\n\n")
    assert pins(tmp_path / "pins.txt") == {"cdktn-provider-demo": "1.0.0"}
    (tmp_path / "loose.txt").write_text("cdktn-provider-demo>=1\n")
    with pytest.raises(ValueError, match="not pinned"):
        pins(tmp_path / "loose.txt")


def test_a_missing_or_stale_cache_says_to_run_make_test(tmp_path: Path) -> None:
    with pytest.raises(SchemaCacheError, match=r"missing: .*run `make test`"):
        load_schemas(tmp_path, {"cdktn-provider-demo": "1.0.0"})
    (tmp_path / "cdktn-provider-demo.json").write_text(json.dumps(EXPECTED))
    assert load_schemas(tmp_path, {"cdktn-provider-demo": "1.0.0"}) == {"hashicorp/demo": EXPECTED}
    with pytest.raises(
        SchemaCacheError, match=r"is cdktn-provider-demo 1.0.0, pinned 1.1.0: .*run `make test`"
    ):
        load_schemas(tmp_path, {"cdktn-provider-demo": "1.1.0"})
    (tmp_path / "cdktn-provider-demo.json").write_text(json.dumps({**EXPECTED, "format": 1}))
    with pytest.raises(SchemaCacheError, match=r"older extractor: .*run `make test`"):
        load_schemas(tmp_path, {"cdktn-provider-demo": "1.0.0"})


def test_the_repository_pins_the_providers_of_both_stacks() -> None:
    assert set(pins()) >= {"cdktn-provider-google", "cdktn-provider-azurerm"}


# ------------------------------------------------------------------ whole configurations


def _configuration(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


VERSIONS = """
terraform {
  required_providers {
    # comments are python-hcl2 keys, never providers, arguments or references: demo_thing.a.x
    demo = { source = "hashicorp/demo", version = "%s" }
  }
}
"""
GOOD_THING = """
resource "demo_thing" "a" {
  # not read: demo_thing.a.colour
  name = "a" # nor demo_thing.a.size
  settings {
    # nor this
    tier = "x"
  }
}
data "demo_thing" "b" {
  name = "${demo_thing.a.self_link}/${demo_thing.a.settings[0].tier}"
}
output "n" { value = data.demo_thing.b.project_number }
variable "size" { type = number }
variable "zone" { default = "z" }
"""


def test_a_configuration_that_fits(tmp_path: Path) -> None:
    folder = _configuration(
        tmp_path / "m", {"versions.tf": VERSIONS % "~> 2.3", "main.tf": GOOD_THING}
    )
    assert check_configuration(folder, {"hashicorp/demo": EXPECTED}, module=True) == []


def test_every_problem_of_a_configuration_names_file_and_address(tmp_path: Path) -> None:
    module = _configuration(
        tmp_path / "modules" / "m",
        {
            "versions.tf": VERSIONS % ">= 1.0",
            "main.tf": GOOD_THING
            + """
resource "demo_gadget" "c" {}
resource "demo_thing" "d" {
  colour = "red"
  settings {}
}
data "demo_thing" "e" {
  count = 2
  size = 1
}
resource "random_password" "f" {}
output "m" {
  value = [demo_thing.a.build, demo_thing.a.get_value, demo_thing.a.colour, var.x.colour]
}
locals {
  l = "${data.demo_thing.b.tier}-${demo_thing.d[0].crc32c}-${demo_gadget.c.anything}"
}
resource "other_thing" "g" { provider = other.east }
""",
        },
    )
    example = _configuration(
        tmp_path / "examples" / "m",
        {
            "main.tf": """
provider "demo" {
  region = "eu"
  alias  = "eu"
  colour = "red"
}
module "gone" {
  source = "../../modules/gone"
  size   = 1
}
module "m" {
  source = "../../modules/m"
  count  = 1
  zone   = "y"
  colours = 3
}
"""
        },
    )
    schemas: dict[str, Schema] = {"hashicorp/demo": EXPECTED}
    shown = f"{tmp_path}/modules/m"
    assert check_configuration(module, schemas, module=True) == [
        f"{shown}/main.tf: demo_gadget.c: unknown resource type in hashicorp/demo 2.3.0",
        f"{shown}/main.tf: demo_thing.d: colour: unknown argument",
        f"{shown}/main.tf: demo_thing.d: name: required argument missing",
        f"{shown}/main.tf: demo_thing.d: settings.tier: required argument missing",
        f"{shown}/main.tf: random_password.f: no schema for provider hashicorp/random "
        "(pin its cdktn-provider wheel in tests/support/provider-schemas.txt)",
        f"{shown}/main.tf: other_thing.g: no schema for provider hashicorp/other "
        "(pin its cdktn-provider wheel in tests/support/provider-schemas.txt)",
        f"{shown}/main.tf: data.demo_thing.e: size: unknown argument",
        f"{shown}/main.tf: output.m: demo_thing.a.colour: demo_thing has no attribute colour",
        f"{shown}/main.tf: locals: data.demo_thing.b.tier: demo_thing has no attribute tier",
        f"{shown}/versions.tf: required_providers.demo: '>= 1.0' admits a major later than 2, never checked",
        f"{shown}/main.tf: other_thing.g: provider other is not in required_providers",
        f"{shown}/main.tf: random_password.f: provider random is not in required_providers",
    ]
    assert check_configuration(example, schemas, module=False) == [
        f"{tmp_path}/examples/m/main.tf: provider.demo: colour: unknown argument",
        f"{tmp_path}/examples/m/main.tf: module.gone: source ../../modules/gone: no .tf files there",
        f"{tmp_path}/examples/m/main.tf: module.m: colours: not a variable of ../../modules/m",
        f"{tmp_path}/examples/m/main.tf: module.m: size: required variable missing",
    ]


def test_a_constraint_that_misses_the_checked_version_fails(tmp_path: Path) -> None:
    folder = _configuration(
        tmp_path / "m", {"versions.tf": VERSIONS % ">= 1.0, < 2.0", "main.tf": GOOD_THING}
    )
    assert check_configuration(folder, {"hashicorp/demo": EXPECTED}, module=True) == [
        f"{folder}/versions.tf: required_providers.demo: '>= 1.0, < 2.0' does not admit 2.3.0, the version checked"
    ]


def test_a_module_without_required_providers_fails_but_an_example_may_inherit(
    tmp_path: Path,
) -> None:
    folder = _configuration(tmp_path / "m", {"main.tf": GOOD_THING})
    schemas: dict[str, Schema] = {"hashicorp/demo": EXPECTED}
    assert check_configuration(folder, schemas, module=True) == [
        f"{folder}/main.tf: demo_thing.a: provider demo is not in required_providers"
    ]
    assert check_configuration(folder, schemas, module=False) == []
