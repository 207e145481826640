"""Facts read from the Terraform stacks, so tests load artifacts the way the stack deploys them.

A test that needs a handler string, an entry point or a function's environment reads it here
from ``iac/terraform/modules/<cloud>``, never restates it: a stack that names a handler the
artifact lacks, or an environment the code does not expect, fails the test that loads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2

MODULES = Path(__file__).resolve().parents[2] / "iac" / "terraform" / "modules"
_REF = re.compile(r"\$\{([^{}]*)\}")


def _load(cloud: str) -> list[dict[str, Any]]:
    docs = []
    for tf in sorted((MODULES / cloud).glob("*.tf")):
        with tf.open() as f:
            docs.append(hcl2.load(f))
    return docs


def _unquote(value: object) -> str:
    return str(value).strip('"')


def resources(cloud: str, resource_type: str) -> dict[str, dict[str, Any]]:
    """``{name: body}`` of every resource of one type in a cloud's module."""
    found: dict[str, dict[str, Any]] = {}
    for doc in _load(cloud):
        for item in doc.get("resource", []):
            for rtype, named in item.items():
                if _unquote(rtype) == resource_type:
                    found.update({_unquote(n): body for n, body in named.items()})
    return found


def stack_values(cloud: str, resource_type: str, *path: str) -> dict[str, str]:
    """``{resource name: the value at path}``, e.g. every Lambda's ``handler``."""
    found = {}
    for name, body in resources(cloud, resource_type).items():
        value: Any = body
        for key in path:
            value = value[key]
            if isinstance(value, list):
                value = value[0]
        found[name] = _unquote(value)
    return found


def _variables(cloud: str) -> dict[str, str]:
    defaults = {}
    for doc in _load(cloud):
        for item in doc.get("variable", []):
            for name, body in item.items():
                if "default" in body:
                    defaults[_unquote(name)] = _unquote(body["default"])
    return defaults


def _locals(cloud: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for doc in _load(cloud):
        for item in doc.get("locals", []):
            values.update({_unquote(k): v for k, v in item.items() if k != "__is_block__"})
    return values


def renderer(cloud: str, variables: dict[str, str] | None = None) -> Callable[[object], str]:
    """Renders a value of the stack's HCL as ``stack_environment`` does (``${var.x}``,
    ``${local.x}``, ``${tostring(...)}``, ``${var.x - N}``; resource attributes as
    ``<type.name.attr>``)."""
    known = {**_variables(cloud), **(variables or {})}
    locals_ = _locals(cloud)

    def expression(text: str) -> str:
        text = text.strip()
        call = re.fullmatch(r"tostring\((.*)\)", text)
        if call:
            return expression(call.group(1))
        difference = re.fullmatch(r"(var\.\w+) - (\d+)", text)  # a margin below a setting
        if difference:
            value = float(expression(difference.group(1))) - int(difference.group(2))
            return f"{value:g}"
        if text.startswith("var."):
            return known[text[4:]]
        if text.startswith("local."):
            return render(locals_[text[6:]])
        return f"<{text}>"

    def render(value: object) -> str:
        return _REF.sub(lambda m: expression(m.group(1)), _unquote(value))

    return render


def stack_environment(
    cloud: str, variables: dict[str, str] | None = None, *, local: str = "environment"
) -> dict[str, str]:
    """The function environment the stack sets (``local.environment``, or another map of
    locals named by ``local``), rendered.

    ``var.x`` takes ``variables`` or the variable's default, ``local.x`` its value,
    ``tostring(...)`` its argument; a reference to a resource attribute (a bucket's name, a
    queue's URL — known only after apply) becomes ``<type.name.attr>``, which no code on a
    cold path may need to resolve.
    """
    render = renderer(cloud, variables)
    environment = _locals(cloud).get(local, {})
    return {_unquote(k): render(v) for k, v in environment.items()}


DEPLOY_DOCS = MODULES.parents[2] / "docs" / "deploy"
PERMISSIONS_HEADING = "## Who calls what"


def permission_table(cloud: str) -> list[dict[str, str]]:
    """The rows of the "Who calls what" table in ``docs/deploy/<cloud>.md``.

    The table is the one place the stack's grants are written down for people; the
    permission tests check the stack against it both ways (every row is granted, nothing
    is granted that no row names). Columns are the header's words, lower-cased; backticks
    around cell values are dropped.
    """
    text = (DEPLOY_DOCS / f"{cloud}.md").read_text()
    if PERMISSIONS_HEADING not in text:
        raise AssertionError(f"docs/deploy/{cloud}.md has no {PERMISSIONS_HEADING!r} section")
    section = text.split(PERMISSIONS_HEADING, 1)[1].split("\n## ", 1)[0]
    lines = [ln.strip() for ln in section.splitlines() if ln.strip().startswith("|")]
    if len(lines) < 3:
        raise AssertionError(f"docs/deploy/{cloud}.md: {PERMISSIONS_HEADING!r} has no table")

    def cells(line: str) -> list[str]:
        return [c.strip().strip("`").strip() for c in line.strip("|").split("|")]

    header = [c.lower() for c in cells(lines[0])]
    return [dict(zip(header, cells(line), strict=True)) for line in lines[2:]]


def app_settings(app: str, variables: dict[str, str] | None = None) -> dict[str, str]:
    """An Azure Function App's ``app_settings``, rendered. The stack writes each as a merge of
    maps of locals and nothing else (``merge(local.environment, local.host_settings, ...)``),
    so every key is seen here; anything else is refused."""
    raw = _unquote(resources("azure", "azurerm_linux_function_app")[app]["app_settings"])
    merged = re.fullmatch(r"\$\{merge\(((?:local\.\w+(?:, )?)+)\)\}", raw)
    if merged is None:
        raise AssertionError(f"{app}.app_settings must be merge(local.<map>, ...): {raw}")
    settings: dict[str, str] = {}
    for name in re.findall(r"local\.(\w+)", merged.group(1)):
        settings.update(stack_environment("azure", variables, local=name))
    return settings
