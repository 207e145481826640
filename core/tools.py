"""Typed tools: plain Python functions whose JSON schema comes from their type hints.

A model sees a tool's name, description and argument schema; the engine validates the
arguments a model proposes with the same pydantic model before calling the function, so a
tool body never sees ill-typed input.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

from agentfn.errors import ToolError, UserError
from agentfn.ports import ToolSpec

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_JSON = TypeAdapter(Any)


class Tool:
    """A callable with a validated argument model and a JSON schema."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        if not self.name or not set(self.name) <= _NAME_CHARS or len(self.name) > 64:
            raise UserError(
                f"tool name {self.name!r} must be 1-64 letters, digits, '_' or '-'", field="name"
            )
        doc = inspect.getdoc(fn) or ""
        self.description = description if description is not None else doc.split("\n\n")[0]
        self.args_model = _args_model(fn, self.name)

    @property
    def parameters(self) -> dict[str, Any]:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        return schema

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def invoke(self, arguments: dict[str, Any]) -> Any:
        """Validate ``arguments``, call the function, return a JSON-compatible result."""
        try:
            args = self.args_model.model_validate(arguments)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "arguments"
            raise ToolError(
                f"tool {self.name!r} rejected its arguments: {where}: {first['msg']}",
                field=where,
            ) from None
        kwargs = {key: getattr(args, key) for key in type(args).model_fields}
        result = self.fn(**kwargs)
        return _JSON.dump_python(result, mode="json")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function into a :class:`Tool` (``@tool`` or ``@tool(name=...)``)."""
    if fn is not None:
        return Tool(fn, name=name, description=description)

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool(f, name=name, description=description)

    return wrap


def _args_model(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise UserError(f"tool {name!r}: *args/**kwargs cannot be described to a model")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    model: type[BaseModel] = create_model(
        f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


class Invocable(Protocol):
    """What the engine needs of a tool: Python (:class:`Tool`) or HTTP (``HttpTool``)."""

    name: str

    def spec(self) -> ToolSpec: ...

    def invoke(self, arguments: dict[str, Any]) -> Any: ...


class ToolRegistry:
    """Tools by name; a workflow sees only the tools its blueprint loads."""

    def __init__(self, tools: Iterable[Invocable] = ()) -> None:
        self._tools: dict[str, Invocable] = {}
        for t in tools:
            self.register(t)

    def register(self, t: Invocable) -> None:
        if t.name in self._tools and self._tools[t.name] is not t:
            raise UserError(f"two tools are named {t.name!r}", field="tools")
        self._tools[t.name] = t

    def get(self, name: str) -> Invocable:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools)) or "none"
            raise UserError(f"unknown tool {name!r} (known: {known})", field="tool") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return sorted(self._tools)

    def specs(self, names: Iterable[str]) -> list[ToolSpec]:
        return [self.get(n).spec() for n in names]


_module_lock = threading.Lock()


def load_tool_module(path: Path) -> list[Tool]:
    """Import a Python file by path (once per process) and return the tools it defines."""
    module = import_file(path, "tool module", field="tools")
    return [v for v in vars(module).values() if isinstance(v, Tool)]


def import_file(path: Path, what: str, *, field: str) -> ModuleType:
    """Import a Python file of the project by path, once per process; a file that is missing
    or fails to import is a ``UserError`` naming it."""
    path = path.resolve()
    if not path.is_file():
        raise UserError(f"{what} {str(path)!r} does not exist", field=field)
    mod_name = "agentfn_tools_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    with _module_lock:
        module = sys.modules.get(mod_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:
                raise UserError(f"cannot import {what} {str(path)!r}", field=field)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[mod_name]
                raise UserError(
                    f"{what} {path.name} failed to import: {type(exc).__name__}: {exc}",
                    field=field,
                ) from None
    return module


def load_registry(paths: Iterable[Path]) -> ToolRegistry:
    registry = ToolRegistry()
    for p in paths:
        for t in load_tool_module(p):
            registry.register(t)
    return registry
