"""Facts read from the Terraform stacks, so tests load artifacts the way the stack deploys them.

A test that needs a handler string, an entry point or a function's environment reads it here
from ``iac/terraform/modules/<cloud>``, never restates it: a stack that names a handler the
artifact lacks, or an environment the code does not expect, fails the test that loads it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
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


def hcl_text(value: object) -> str:
    """A value as python-hcl2 reads it, written back as HCL: ``${...}`` is an expression,
    a quoted string stays a (template) string."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(hcl_text(v) for v in value) + "]"
    if isinstance(value, dict):
        fields = (f"{_unquote(k)} = {hcl_text(v)}" for k, v in value.items() if k != "__is_block__")
        return "{" + ", ".join(fields) + "}"
    text = str(value)
    return text[2:-1] if text.startswith("${") and text.endswith("}") else text


def _is_expression(value: object) -> bool:
    """A local that is one Terraform expression (``join(...)``, ``a ? b : c``), not a string."""
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


_LOCAL_REF = re.compile(r"\blocal\.(\w+)")
_VAR_REF = re.compile(r"\bvar\.(\w+)")


def terraform_value(cloud: str, expression: str, variables: dict[str, str] | None = None) -> Any:
    """What Terraform itself makes of ``expression`` (over ``var.*`` and ``local.*``) in the
    cloud's module: ``terraform console`` on the module's variables and the locals the
    expression needs, offline (no provider, no state). ``variables`` are ``-var`` values
    (HCL for lists and objects, as on the command line), checked by the module's own
    validation rules; the others take their defaults. A reference to a resource (known only
    after apply) fails, as does a value Terraform refuses."""
    given = tuple(sorted((variables or {}).items()))
    return json.loads(_console(cloud, expression, given))


@functools.cache
def _console(cloud: str, expression: str, given: tuple[tuple[str, str], ...]) -> str:
    locals_ = _locals(cloud)
    needed: dict[str, str] = {}
    pending = _LOCAL_REF.findall(expression)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed[name] = hcl_text(locals_[name])
            pending += _LOCAL_REF.findall(needed[name])
    used = set(_VAR_REF.findall(" ".join([expression, *needed.values()])))
    declared = MODULES / cloud / "variables.tf"
    with declared.open() as f:
        assert set(hcl2.load(f)) == {"variable"}, f"{declared}: variables only, to copy it"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "variables.tf").write_text(declared.read_text())
        body = "".join(f"  {name} = {text}\n" for name, text in sorted(needed.items()))
        (Path(tmp) / "locals.tf").write_text(f"locals {{\n{body}}}\n")
        options = [arg for k, v in given if k in used for arg in ("-var", f"{k}={v}")]
        result = subprocess.run(
            ["terraform", "console", "-no-color", "-input=false", *options],
            input=f"jsonencode({expression})\n",
            cwd=tmp,
            env={**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    out = result.stdout.strip()
    if result.returncode != 0 or "Error:" in result.stderr or not out.startswith('"'):
        raise AssertionError(f"terraform console: {expression} {options}:\n{result.stderr}{out}")
    return str(json.loads(out))


def renderer(cloud: str, variables: dict[str, str] | None = None) -> Callable[[object], str]:
    """Renders a value of the stack's HCL as ``stack_environment`` does (``${var.x}``,
    ``${local.x}``, ``${tostring(...)}``, ``${var.x - N}``; a local that is one expression,
    such as ``join(",", compact([...]))``, as ``terraform_value`` evaluates it; resource
    attributes as ``<type.name.attr>``)."""
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
            value = locals_[text[6:]]
            if _is_expression(value):
                evaluated = terraform_value(cloud, text, variables)
                assert isinstance(evaluated, str), f"{text} is no string: {evaluated!r}"
                return evaluated
            return render(value)
        return f"<{text}>"

    def render(value: object) -> str:
        return _REF.sub(lambda m: expression(m.group(1)), _unquote(value))

    return render


def stack_environment(
    cloud: str, variables: dict[str, str] | None = None, *, local: str = "environment"
) -> dict[str, str]:
    """The function environment the stack sets (``local.environment``, or another map of
    locals named by ``local``), rendered.

    ``var.x`` takes ``variables`` or the variable's default, ``local.x`` its value (as
    Terraform computes it, with ``terraform_value``, for a local that is one expression, such
    as the ``AGENTFN_MODEL_HOSTS`` list), ``tostring(...)`` its argument; a reference to a
    resource attribute (a bucket's name, a queue's URL — known only after apply) becomes
    ``<type.name.attr>``, which no code on a cold path may need to resolve.
    """
    render = renderer(cloud, variables)
    environment = _locals(cloud).get(local, {})
    return {_unquote(k): render(v) for k, v in environment.items()}


DEPLOY_DOCS = MODULES.parents[2] / "docs" / "deploy"
PERMISSIONS_HEADING = "## Who calls what"
ONLY_WHEN = re.compile(r"only when `(\w+)` is set")
"""How a row's Calls say that a variable switches its grant on (off by default)."""


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


def check_switched_grants(
    cloud: str, switches: Mapping[tuple[str, ...], str | None], switched_on: Mapping[str, str]
) -> None:
    """Each grant a variable switches (``switches``: grant -> its ``count`` expression, None
    for an unconditional one) is off by default and on with the variable set to its
    ``switched_on`` value; exactly the table rows of switched grants say "only when `var`"."""
    switched = {g: c for g, c in switches.items() if c is not None}
    assert switched, f"{cloud}: no grant has a count"
    for grant, count in switched.items():
        variables = set(_VAR_REF.findall(count))
        assert variables and variables <= set(switched_on), (grant, count)
        on = {name: switched_on[name] for name in variables}
        assert terraform_value(cloud, count) == 0, f"{grant}: granted by default"
        assert terraform_value(cloud, count, on) == 1, f"{grant}: never granted"
    for row in permission_table(cloud):
        said = set(ONLY_WHEN.findall(row["calls"]))
        count = switches.get((row["identity"], row["resource"], row["permission"]))
        wanted = set(_VAR_REF.findall(count or ""))
        assert said == wanted, f"{row}: its Calls must say only when {wanted or 'never'}"
