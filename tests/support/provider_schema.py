"""Offline provider schemas, and a check of Terraform configurations against them.

``terraform validate`` needs the provider binary, and only the AWS provider is on this machine's
mirror. The ``cdktn-provider-*`` wheels on PyPI carry each provider's whole schema as a jsii
assembly (``_jsii/provider-*.jsii.tgz`` → ``package/.jsii``, 80-130 MB of JSON).
``python -m tests.support.provider_schema extract --out DIR WHEEL…`` (run by ``make test``)
turns each into a compact JSON, so the test loads a few MB and never the network:

    {"format": 2, "provider": "google", "source": "hashicorp/google", "version": "8.7.0",
     "package": "cdktn-provider-google", "package_version": "21.1.0",
     "provider_config": BODY, "resources": {TYPE: RESOURCE}, "data_sources": {TYPE: RESOURCE},
     "ephemeral_resources": {TYPE: RESOURCE}}
    RESOURCE = BODY + {"attributes": [NAME]}: all a reference ``type.name.NAME`` may read
    BODY  = {"arguments": {NAME: {"required": bool}}, "blocks": {NAME: BLOCK}}
    BLOCK = BODY + {"required": bool, "nesting": "single" | "list", "max_items": 1 (single only)}
            or, for a block that contains itself, {…, "same_as": DEPTH}: its body is the
            enclosing one DEPTH levels below the resource (0 = the resource itself)

In the assembly a resource's settable arguments are the ``properties`` of its ``…Config``
struct (``optional`` unless required); each one's docs link to the Terraform Registry, whose
``#anchor`` is the snake_case name (cdktn renames some, e.g. ``get_x`` → ``fetchX``, so the
anchor, not the camelCase, is the truth) and whose path gives the provider version. A nested
block is a property typed by another struct: the struct itself for a block of at most one, an
array of it (or a union with one) for a list or set. Computed-only attributes are not settable
and not in the structs, so setting one is reported as unknown, as Terraform does.

``check_configuration`` reads a folder of ``.tf`` files with python-hcl2 (which marks each
block occurrence with ``__is_block__``) and returns one line per problem: unknown resource
types, arguments and blocks, missing required ones, blocks given as arguments and the reverse,
single blocks repeated, references to attributes a resource does not have, module calls with
unknown or missing variables, and
``required_providers`` constraints that do not admit the checked version or admit a later major.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast

import hcl2

ROOT = Path(__file__).resolve().parents[2]
PINS = Path(__file__).with_name("provider-schemas.txt")
CACHE = ROOT / ".emulators" / "schemas"
FORMAT = 2  # of the extracted JSON: a cache written by an older extractor is stale
MISSING_CACHE = "provider schemas are not extracted: run `make test` (it downloads them once)"


class Argument(TypedDict):
    required: bool


class Body(TypedDict):
    arguments: dict[str, Argument]
    blocks: dict[str, Block]


class Block(Body):
    required: bool
    nesting: Literal["single", "list"]
    max_items: NotRequired[int]
    same_as: NotRequired[int]  # recursive: the body is the one this many levels from the top


class Resource(Body):
    attributes: list[str]  # what `type.name.X` may read: arguments, blocks and computed ones


class Schema(TypedDict):
    format: int
    provider: str
    source: str
    version: str
    package: str
    package_version: str
    provider_config: Body
    resources: dict[str, Resource]
    data_sources: dict[str, Resource]
    ephemeral_resources: dict[str, Resource]


# ------------------------------------------------------------------ extraction from a wheel

_LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/(?P<ns>[\w-]+)/(?P<name>[\w-]+)/"
    r"(?P<version>[\w.-]+)/docs(?:/(?P<kind>[\w-]+)/(?P<path>\w+))?(?:#(?P<anchor>\w+))?"
    r"(?: (?P<label>[^}]+))?\}"
)
_KINDS = {
    "cdktn.TerraformResource": "resources",
    "cdktn.TerraformDataSource": "data_sources",
    "cdktn.TerraformEphemeralResource": "ephemeral_resources",
}


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


class _Assembly:
    """One jsii assembly's types, read as Terraform schemas."""

    def __init__(self, assembly: Mapping[str, Any]) -> None:
        self.types: Mapping[str, Any] = assembly["types"]
        self.versions: set[tuple[str, str, str]] = set()

    def links(self, docs: Mapping[str, str]) -> list[re.Match[str]]:
        """The registry links of some docs, noting the provider release each one names."""
        found = list(_LINK.finditer(f"{docs.get('summary', '')} {docs.get('remarks', '')}"))
        self.versions.update((m["ns"], m["name"], m["version"]) for m in found)
        return found

    def _struct_of(self, jsii_type: Mapping[str, Any]) -> tuple[str, str] | None:
        """``(nesting, struct fqn)`` when a property's type is a nested block."""
        if "fqn" in jsii_type:
            target = self.types.get(jsii_type["fqn"])
            if target is not None and target.get("datatype"):
                return "single", str(jsii_type["fqn"])
            return None
        if "collection" in jsii_type:
            collection = jsii_type["collection"]
            inner = self._struct_of(collection["elementtype"])
            if collection["kind"] == "array" and inner is not None:
                return "list", inner[1]
            return None
        if "union" in jsii_type:
            for member in jsii_type["union"]["types"]:
                inner = self._struct_of(member)
                if inner is not None:
                    return inner
        return None

    def _name(self, prop: Mapping[str, Any]) -> str:
        """A struct property's Terraform name: its registry anchor, else its snake_case."""
        anchors = [m["anchor"] for m in self.links(prop.get("docs", {})) if m["anchor"]]
        return anchors[-1] if anchors else _snake(prop["name"])

    def resource(self, cls: Mapping[str, Any]) -> Resource:
        """A resource's arguments and blocks, and every attribute a reference may read.

        The attributes are the class's getters; those also settable take their name from the
        config struct, computed-only ones from their camelCase, also undoing cdktn's renames
        (``get_x`` → ``fetchX``, a name clashing with a method → ``nameAttribute``).
        """
        config = self.config_of(cls)
        body = self.body(config)
        settable = {p["name"]: self._name(p) for p in self.types[config].get("properties", [])}
        names = {"id"}
        for prop in cls.get("properties", []):
            camel = str(prop["name"])
            if prop.get("static") or camel.endswith("Input"):
                continue
            if camel in settable:
                names.add(settable[camel])
                continue
            names.add(_snake(camel))
            if camel.endswith("Attribute"):
                names.add(_snake(camel.removesuffix("Attribute")))
            if camel.startswith("fetch"):
                names.add("get_" + _snake(camel.removeprefix("fetch")))
        attributes = sorted(names | set(body["arguments"]) | set(body["blocks"]))
        return {"arguments": body["arguments"], "blocks": body["blocks"], "attributes": attributes}

    def body(self, fqn: str, seen: tuple[str, ...] = ()) -> Body:
        seen = (*seen, fqn)
        body: Body = {"arguments": {}, "blocks": {}}
        for prop in self.types[fqn].get("properties", []):
            name = self._name(prop)
            required = not prop.get("optional", False)
            nested = self._struct_of(prop["type"])
            if nested is None:
                body["arguments"][name] = {"required": required}
                continue
            nesting, struct = nested
            block: Block = {"required": required, "nesting": "list", "arguments": {}, "blocks": {}}
            if struct in seen:  # a recursive block: its body is an enclosing one's
                block["same_as"] = seen.index(struct)
            else:
                inner = self.body(struct, seen)
                block["arguments"], block["blocks"] = inner["arguments"], inner["blocks"]
            if nesting == "single":
                block["nesting"] = "single"
                block["max_items"] = 1
            body["blocks"][name] = block
        return body

    def config_of(self, cls: Mapping[str, Any]) -> str:
        """The struct a resource, data source or provider class is configured with."""
        for param in cls.get("initializer", {}).get("parameters", []):
            if param["name"] == "config":
                return str(param["type"]["fqn"])
        raise ValueError(f"{cls['fqn']} has no config parameter")


def schema_from_assembly(assembly: Mapping[str, Any], package: str, package_version: str) -> Schema:
    """The compact schema of the one Terraform provider an assembly describes."""
    jsii = _Assembly(assembly)
    bodies: dict[str, dict[str, Resource]] = {kind: {} for kind in _KINDS.values()}
    provider: Body | None = None
    for cls in assembly["types"].values():
        if cls.get("kind") != "class":
            continue
        base = cls.get("base")
        if base == "cdktn.TerraformProvider":
            provider = jsii.body(jsii.config_of(cls))
            jsii.links(cls["docs"])
        elif base in _KINDS:
            links = jsii.links(cls["docs"])
            if not links or not links[0]["label"]:
                raise ValueError(f"{cls['fqn']}: no registry link naming its type")
            bodies[_KINDS[base]][links[0]["label"].strip()] = jsii.resource(cls)
    if provider is None:
        raise ValueError(f"{package} {package_version}: no provider class in the assembly")
    if len(jsii.versions) != 1:
        raise ValueError(f"{package}: registry links name {sorted(jsii.versions)}, not one")
    ((namespace, name, version),) = jsii.versions
    return {
        "format": FORMAT,
        "provider": name,
        "source": f"{namespace}/{name}",
        "version": version,
        "package": package,
        "package_version": package_version,
        "provider_config": provider,
        "resources": bodies["resources"],
        "data_sources": bodies["data_sources"],
        "ephemeral_resources": bodies["ephemeral_resources"],
    }


def extract(wheel: Path, out: Path) -> Path:
    """Read the assembly inside a ``cdktn-provider-*`` wheel; write ``<package>.json``."""
    dist, package_version = wheel.name.split("-")[:2]
    package = dist.replace("_", "-")
    with zipfile.ZipFile(wheel) as whl:
        (member,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        with (
            tarfile.open(fileobj=io.BytesIO(whl.read(member))) as tgz,
            tgz.extractfile("package/.jsii") as raw,  # type: ignore[union-attr]
        ):
            assembly = json.load(raw)
    schema = schema_from_assembly(assembly, package, package_version)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{package}.json"
    target.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True))
    return target


# ------------------------------------------------------------------ the cache and its pins


def _shown(path: Path) -> Path:
    """A path as the messages show it: from the repository root when inside it."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def pins(path: Path = PINS) -> dict[str, str]:
    """``{package: version}`` from the pins file (``name==version`` lines)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            if not version:
                raise ValueError(f"{path}: {line!r} is not pinned with ==")
            found[name.strip()] = version.strip()
    return found


def load_schemas(cache: Path = CACHE, pinned: Mapping[str, str] | None = None) -> dict[str, Schema]:
    """``{source: schema}`` of every pinned provider; one line naming the fix when stale."""
    schemas: dict[str, Schema] = {}
    for package, version in (pins() if pinned is None else pinned).items():
        path = cache / f"{package}.json"
        if not path.exists():
            raise SchemaCacheError(f"{_shown(path)} missing: {MISSING_CACHE}")
        schema = cast(Schema, json.loads(path.read_text()))
        if schema.get("format") != FORMAT:
            raise SchemaCacheError(
                f"{_shown(path)} was written by an older extractor: {MISSING_CACHE}"
            )
        if schema["package_version"] != version:
            raise SchemaCacheError(
                f"{_shown(path)} is {package} {schema['package_version']}, "
                f"pinned {version}: {MISSING_CACHE}"
            )
        schemas[schema["source"]] = schema
    return schemas


class SchemaCacheError(Exception):
    """The extracted schemas are missing or older than the pins."""


# ------------------------------------------------------------------ version constraints


@dataclass(frozen=True, order=True)
class Version:
    """A provider version; a pre-release sorts before its release, as in go-version."""

    parts: tuple[int, int, int]
    release: bool = True
    pre: str = ""

    @classmethod
    def parse(cls, text: str) -> tuple[Version, int]:
        """The version and how many numeric segments it was written with."""
        match = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?", text)
        if not match:
            raise ValueError(f"not a version: {text!r}")
        given = [int(g) for g in match.groups()[:3] if g is not None]
        parts = (*given, 0, 0)[:3]
        pre = match.group(4) or ""
        return cls((parts[0], parts[1], parts[2]), not pre, pre), len(given)

    def __str__(self) -> str:
        text = ".".join(map(str, self.parts))
        return f"{text}-{self.pre}" if self.pre else text


_TERM = re.compile(r"\s*(>=|<=|!=|~>|=|>|<)?\s*([0-9A-Za-z.+-]+)\s*")


@dataclass(frozen=True)
class Term:
    """One term as a range of versions: ``lo <= v < hi`` (``<= hi`` when ``closed``),
    or everything outside it when ``negated``. ``None`` is unbounded."""

    lo: Version | None
    hi: Version | None
    closed: bool = False
    negated: bool = False

    def holds(self, version: Version) -> bool:
        above = self.lo is None or version >= self.lo
        below = self.hi is None or version < self.hi or (self.closed and version == self.hi)
        return (above and below) != self.negated


def _bump(version: Version, segments: int) -> Version:
    """The first release past every version the first ``segments`` segments match."""
    major, minor, patch = version.parts
    bumped = [(major + 1, 0, 0), (major, minor + 1, 0), (major, minor, patch + 1)][segments - 1]
    return Version(bumped)


@dataclass(frozen=True)
class Constraint:
    """A Terraform provider version constraint: comma-separated terms that must all hold.

    As Terraform reads them (apparentlymart/go-versions, ruby style): a bare version means
    ``=``; segments left out are wildcards, so ``= 5.2`` is any 5.2.x, ``<= 5`` any 5.x or
    lower, ``> 5.2`` 5.3.0 and up; ``~>`` lets only the rightmost given segment grow
    (``~> 5.2`` is ``>= 5.2, < 6``; ``~> 5.2.1`` is ``>= 5.2.1, < 5.3``; ``~> 5`` is 5.x).
    A pre-release is admitted only when a term names it exactly.
    """

    text: str
    terms: tuple[Term, ...]
    named: frozenset[Version]

    @classmethod
    def parse(cls, text: str) -> Constraint:
        terms: list[Term] = []
        named: set[Version] = set()
        for raw in text.split(","):
            match = _TERM.fullmatch(raw)
            if not match:
                raise ValueError(f"not a version constraint: {text!r}")
            op = match.group(1) or "="
            version, segments = Version.parse(match.group(2))
            exact = segments == 3 or not version.release
            hi = version if exact else _bump(version, segments)
            closed = exact
            if op in ("=", "!="):
                terms.append(Term(version, hi, closed, negated=op == "!="))
                if op == "=" and not version.release:
                    named.add(version)
            elif op == ">=":
                terms.append(Term(version, None))
            elif op == "<":
                terms.append(Term(None, version))
            elif op == "<=":
                terms.append(Term(None, hi, closed))
            elif op == ">":
                terms.append(Term(hi, None) if not exact else Term(None, version, True, True))
            else:  # ~>
                terms.append(Term(version, _bump(version, 2 if segments == 3 else 1)))
        return cls(text, tuple(terms), frozenset(named))

    def admits(self, version: Version) -> bool:
        if not version.release and version not in self.named:
            return False
        return all(term.holds(version) for term in self.terms)

    def admits_above(self, major: int) -> bool:
        """Whether any release of a major later than ``major`` satisfies every term.

        The admitted releases from the next major on form a range less a few points, so if
        there is one, the first is the next major itself, a bound of some term, or the release
        right after one: those are all the candidates needed.
        """
        floor = Version((major + 1, 0, 0))
        candidates = {floor}
        for term in self.terms:
            for bound in (term.lo, term.hi):
                if bound is not None:
                    candidates |= {Version(bound.parts), _bump(bound, 3)}
        return any(self.admits(c) for c in candidates if c >= floor)


# ------------------------------------------------------------------ checking configurations

_RESOURCE_META = {
    "count",
    "for_each",
    "depends_on",
    "provider",
    "lifecycle",
    "provisioner",
    "connection",
}
_DATA_META = {"count", "for_each", "depends_on", "provider", "lifecycle"}
_PROVIDER_META = {"alias", "version"}
_MODULE_META = {"source", "version", "providers", "count", "for_each", "depends_on"}
_DYNAMIC_KEYS = {"for_each", "iterator", "labels", "content"}
_SECTIONS = {"resource": "resources", "data": "data_sources", "ephemeral": "ephemeral_resources"}
_ADDRESS_PREFIX = {"resource": "", "data": "data.", "ephemeral": "ephemeral."}


def _unquote(value: object) -> str:
    return str(value).strip('"')


def _is_block(value: object) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
        and bool(value)
    )


def _hcl2_meta(key: object) -> bool:
    """python-hcl2's own keys (``__is_block__``, ``__comments__``…), not Terraform's."""
    return isinstance(key, str) and key.startswith("__") and key.endswith("__")


def _fields(body: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    return ((k, v) for k, v in body.items() if not _hcl2_meta(k))


_REFERENCE = re.compile(
    r"(?<![\w.\]])(?P<prefix>data\.|ephemeral\.)?(?P<type>[a-z][a-z0-9_]*)\.(?P<name>[A-Za-z_][\w-]*)"
    r"(?:\[[^\]]*\])?\.(?P<attr>[A-Za-z_][\w-]*)"
)
_PREFIX_SECTION = {"": "resource", "data.": "data", "ephemeral.": "ephemeral"}


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for _, item in _fields(value):
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _same_name(name: str) -> str:
    """Names compared as cdktn mangles them: ``use_32_bit`` and ``use32_bit`` are one."""
    return name.replace("_", "").lower()


def check_body(
    body: Mapping[str, Any],
    schema: Body,
    path: str,
    meta: Iterable[str] = (),
    enclosing: tuple[Body, ...] = (),
) -> list[str]:
    """Problems of one block body against its schema, recursively (``path`` prefixes each).

    ``enclosing`` holds the bodies from the resource down, which a recursive block's
    ``same_as`` points into.
    """
    stack = (*enclosing, schema)
    problems: list[str] = []
    meta = set(meta)
    blocks: dict[str, list[Mapping[str, Any]]] = {}
    dynamic: dict[str, list[Mapping[str, Any]]] = {}
    for key, value in _fields(body):
        if key in meta:
            continue
        where = f"{path}{key}"
        if key == "dynamic" and isinstance(value, list):  # [{"label": spec}], specs are blocks
            for labelled in value:
                for label, spec in _fields(labelled):
                    name = _unquote(label)
                    extra = sorted(set(dict(_fields(spec))) - _DYNAMIC_KEYS)
                    problems += [
                        f"{path}dynamic.{name}.{k}: unknown argument of a dynamic block"
                        for k in extra
                    ]
                    contents = spec.get("content", [])
                    if not _is_block(contents):
                        problems.append(f"{path}dynamic.{name}: no content block")
                        contents = []
                    dynamic.setdefault(name, []).extend(contents)
            continue
        if _is_block(value):
            if key in schema["arguments"]:
                problems.append(f"{where}: is an argument, not a block (write `{key} = …`)")
            elif key not in schema["blocks"]:
                problems.append(f"{where}: unknown block")
            else:
                blocks[key] = value
        elif key in schema["blocks"]:
            problems.append(f"{where}: is a block, not an argument (write `{key} {{ … }}`)")
        elif key not in schema["arguments"]:
            problems.append(f"{where}: unknown argument")
    for name in sorted(dynamic):
        if name not in schema["blocks"]:
            problems.append(f"{path}dynamic.{name}: unknown block")
    for name, argument in sorted(schema["arguments"].items()):
        if argument["required"] and name not in body:
            problems.append(f"{path}{name}: required argument missing")
    for name, block in sorted(schema["blocks"].items()):
        given = blocks.get(name, [])
        if block["required"] and not given and name not in dynamic:
            problems.append(f"{path}{name}: required block missing")
        if "max_items" in block and len(given) > block["max_items"]:
            problems.append(
                f"{path}{name}: {len(given)} blocks, at most {block['max_items']} allowed"
            )
        inner: Body = stack[block["same_as"]] if "same_as" in block else block
        for index, occurrence in enumerate(given):
            label = f"{name}[{index}]" if block["nesting"] == "list" else name
            problems += check_body(occurrence, inner, f"{path}{label}.", (), stack)
        for occurrence in dynamic.get(name, []):
            where = f"{path}dynamic.{name}.content."
            problems += check_body(occurrence, inner, where, (), stack)
    return problems


@dataclass
class _Configuration:
    """The ``.tf`` files of one folder, parsed."""

    folder: Path
    files: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, folder: Path) -> _Configuration:
        files = {}
        for tf in sorted(folder.glob("*.tf")):
            with tf.open() as f:
                files[tf.name] = hcl2.load(f)
        return cls(folder, files)

    def sections(self, section: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for name, doc in self.files.items():
            for item in doc.get(section, []):
                yield name, item

    def required_providers(self) -> dict[str, tuple[str, str | None, str]]:
        """``{local name: (source, constraint or None, file)}``."""
        found: dict[str, tuple[str, str | None, str]] = {}
        for file, terraform in self.sections("terraform"):
            for block in terraform.get("required_providers", []):
                for local, spec in _fields(block):
                    if isinstance(spec, dict):
                        source = _unquote(spec.get("source", f"hashicorp/{local}"))
                        version = spec.get("version")
                        constraint = None if version is None else _unquote(version)
                        found[local] = (source, constraint, file)
                    else:  # the legacy `name = "constraint"` form
                        found[local] = (f"hashicorp/{local}", _unquote(spec), file)
        return found

    def variables(self) -> dict[str, bool]:
        """``{variable: required}``: a variable without a default must be given."""
        return {
            _unquote(name): "default" not in body
            for _, item in self.sections("variable")
            for name, body in _fields(item)
        }


def _source_of(local: str, declared: Mapping[str, tuple[str, str | None, str]]) -> str:
    """A provider's source address: declared, or Terraform's default ``hashicorp/<name>``."""
    source = declared[local][0] if local in declared else f"hashicorp/{local}"
    return source.removeprefix("registry.terraform.io/")


def _check_references(
    config: _Configuration,
    where: Path,
    schema_of: Callable[[str, str, str], Resource | None],
) -> list[str]:
    """``type.name.attr`` references to a resource of this folder must name an attribute."""
    problems = []
    for file, doc in config.files.items():
        for section, items in doc.items():
            for item in items if isinstance(items, list) else []:
                for key, value in _fields(item):
                    address = f"{section}.{_unquote(key)}" if section != "locals" else "locals"
                    if section in _SECTIONS and isinstance(value, Mapping):
                        prefix = _ADDRESS_PREFIX[section]
                        names = [_unquote(n) for n, _ in _fields(value)]
                        address = ", ".join(f"{prefix}{_unquote(key)}.{n}" for n in names)
                    for text in _strings(value):
                        for ref in _REFERENCE.finditer(text):
                            section_of = _PREFIX_SECTION[ref["prefix"] or ""]
                            resource = schema_of(section_of, ref["type"], ref["name"])
                            if resource is None:
                                continue
                            known = {_same_name(a) for a in resource["attributes"]}
                            if _same_name(ref["attr"]) not in known:
                                problems.append(
                                    f"{where}/{file}: {address}: {ref[0]}: "
                                    f"{ref['type']} has no attribute {ref['attr']}"
                                )
    return problems


def check_configuration(folder: Path, schemas: Mapping[str, Schema], module: bool) -> list[str]:
    """Every problem of one Terraform folder against the schemas, one line each.

    ``module`` (a reusable module, not a root example) also demands that every provider it
    uses is in its ``required_providers`` with a version constraint.
    """
    config = _Configuration.read(folder)
    where = _shown(folder)
    problems: list[str] = []
    declared = config.required_providers()
    used: dict[str, str] = {}

    def schema_for(local: str, file: str, address: str) -> Schema | None:
        source = _source_of(local, declared)
        used.setdefault(local, f"{where}/{file}: {address}")
        if source not in schemas:
            problems.append(
                f"{where}/{file}: {address}: no schema for provider {source} "
                f"(pin its cdktn-provider wheel in {_shown(PINS)})"
            )
            return None
        return schemas[source]

    checked: dict[tuple[str, str, str], Resource] = {}

    def schema_for_type(section: str, rtype: str, rname: str) -> Resource | None:
        return checked.get((section, rtype, rname))

    for section, kind in _SECTIONS.items():
        for file, item in config.sections(section):
            for rtype, named in _fields(item):
                rtype = _unquote(rtype)
                for rname, body in _fields(named):
                    address = f"{_ADDRESS_PREFIX[section]}{rtype}.{_unquote(rname)}"
                    provider_ref = _unquote(body.get("provider", "")).strip("${}")
                    local = provider_ref.split(".")[0] if provider_ref else rtype.split("_")[0]
                    schema = schema_for(local, file, address)
                    if schema is None:
                        continue
                    if rtype not in schema[kind]:  # type: ignore[literal-required]
                        problems.append(
                            f"{where}/{file}: {address}: unknown {kind[:-1].replace('_', ' ')} "
                            f"type in {schema['source']} {schema['version']}"
                        )
                        continue
                    meta = _RESOURCE_META if section == "resource" else _DATA_META
                    body_schema: Resource = schema[kind][rtype]  # type: ignore[literal-required]
                    checked[(section, rtype, _unquote(rname))] = body_schema
                    problems += [
                        f"{where}/{file}: {address}: {p}"
                        for p in check_body(body, body_schema, "", meta)
                    ]

    problems += _check_references(config, where, schema_for_type)

    for file, item in config.sections("provider"):
        for local, body in _fields(item):
            local = _unquote(local)
            schema = schema_for(local, file, f"provider.{local}")
            if schema is not None:
                problems += [
                    f"{where}/{file}: provider.{local}: {p}"
                    for p in check_body(body, schema["provider_config"], "", _PROVIDER_META)
                ]

    for file, item in config.sections("module"):
        for name, body in _fields(item):
            address = f"module.{_unquote(name)}"
            source = _unquote(body.get("source", ""))
            if not source.startswith(("./", "../")):
                continue  # a registry module: its variables are not here to check
            target = (folder / source).resolve()
            if not sorted(target.glob("*.tf")):
                problems.append(f"{where}/{file}: {address}: source {source}: no .tf files there")
                continue
            variables = _Configuration.read(target).variables()
            for key, _ in _fields(body):
                if key not in _MODULE_META and key not in variables:
                    problems.append(f"{where}/{file}: {address}: {key}: not a variable of {source}")
            for variable, required in sorted(variables.items()):
                if required and variable not in body:
                    problems.append(
                        f"{where}/{file}: {address}: {variable}: required variable missing"
                    )

    for local, (_, constraint, file) in sorted(declared.items()):
        schema = schemas.get(_source_of(local, declared))
        if schema is not None:
            problems += [
                f"{where}/{file}: required_providers.{local}: {p}"
                for p in check_constraint(constraint, schema["version"])
            ]
    if module:
        for local, first_use in sorted(used.items()):
            if local not in declared:
                problems.append(f"{first_use}: provider {local} is not in required_providers")
    return problems


def check_constraint(constraint: str | None, version: str) -> list[str]:
    """Problems of one ``required_providers`` version constraint against the checked version."""
    if constraint is None:
        return ["no version constraint: any major would be installed"]
    parsed = Constraint.parse(constraint)
    checked, _ = Version.parse(version)
    problems = []
    if not parsed.admits(checked):
        problems.append(f"{constraint!r} does not admit {version}, the version checked")
    if parsed.admits_above(checked.parts[0]):
        problems.append(
            f"{constraint!r} admits a major later than {checked.parts[0]}, never checked"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.provider_schema")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("extract", help="write the compact schema of each wheel")
    run.add_argument("--out", type=Path, default=CACHE)
    run.add_argument("wheels", type=Path, nargs="+")
    args = parser.parse_args(argv)
    for wheel in args.wheels:
        target = extract(wheel, args.out)
        schema = json.loads(target.read_text())
        sys.stdout.write(
            f"{target}: {schema['source']} {schema['version']}, {len(schema['resources'])} "
            f"resources, {len(schema['data_sources'])} data sources\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
