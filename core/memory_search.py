"""The deployment's search index for remembered facts, plugged in by a setting.

``AGENTFN_MEMORY_SEARCH=<file.py>:<factory>`` names a Python file of the project and a
function in it that takes no arguments and returns a ``FactSearch`` (a vector store's client,
say). It is the deployment's own code, like its tool modules, so it resolves inside the project
folder only; a blueprint cannot name one.
"""

from __future__ import annotations

from pathlib import Path

from agentfn.errors import ConfigError, UserError
from agentfn.ports import FactSearch
from agentfn.project_files import project_file
from agentfn.tools import import_file

SETTING = "AGENTFN_MEMORY_SEARCH"


def load_fact_search(spec: str, project: Path) -> FactSearch:
    file, sep, name = spec.partition(":")
    if not sep or not file or not name.isidentifier():
        raise ConfigError(f"{SETTING} must look like search.py:factory, got {spec!r}")
    try:
        module = import_file(
            project_file(project, file, "memory search module"), SETTING, field=SETTING
        )
    except UserError as exc:
        raise ConfigError(f"{SETTING}: {exc.message}") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ConfigError(f"{SETTING}: {file} has no function {name!r}")
    try:
        search = factory()
    except Exception as exc:  # the deployment's code: say what broke, never a traceback
        raise ConfigError(
            f"{SETTING}: {file}:{name}() failed: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(search, FactSearch):
        raise ConfigError(
            f"{SETTING}: {file}:{name} returned {type(search).__name__}, which lacks "
            "index/remove/search"
        )
    return search
