"""Lazy package attributes, for the cloud adapter packages.

``agentfn.adapters.aws``, ``.gcp`` and ``.azure`` export their adapter classes by name, but
each class's module imports its SDK, so a package ``__init__`` must not import them: a
handler that opens one queue would pay for every SDK of its cloud, and importing the package
(or the registry) would fail where an extra is missing. Each ``__init__`` maps names to
modules and resolves a name on first access through :func:`load`. No SDK is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

__all__ = ["load"]


def load(package: str, modules: Mapping[str, str], name: str) -> Any:
    """``name`` from its module in ``modules`` (a module ``__getattr__`` for ``package``)."""
    module = modules.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
