"""The public API: one table at the package root, loaded lazily, and the only names docs show."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import agentfn

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_MODULES = {"testing"}  # importable by users besides the root


def test_every_public_name_resolves_to_its_defining_module() -> None:
    for name in agentfn.__all__:
        value = getattr(agentfn, name)
        if name != "__version__":
            assert value.__name__ == name and value.__module__.startswith("agentfn.")
    assert "tool" in agentfn.__all__ and "tool" in dir(agentfn)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        agentfn.nothing_here  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "nothing_here" in str(exc)
    else:
        raise AssertionError("agentfn.nothing_here resolved")


def test_import_agentfn_loads_nothing_until_a_name_is_used() -> None:
    code = (
        "import sys, agentfn\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('agentfn.') or m == 'pydantic')\n"
        "assert loaded == [], loaded\n"
        "from agentfn import tool\n"
        "assert 'agentfn.tools' in sys.modules and 'agentfn.engine' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT / "docs", timeout=60)


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_docs_import_only_public_names() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    offenders = []
    for page in pages:
        for block in _python_blocks(page.read_text()):
            for module in re.findall(r"^\s*(?:from|import)\s+(agentfn[\w.]*)", block, flags=re.M):
                parts = module.split(".")
                if len(parts) > 1 and parts[1] not in PUBLIC_MODULES:
                    offenders.append(f"{page.relative_to(ROOT)}: {module}")
    assert not offenders, offenders
    readme = (ROOT / "README.md").read_text()
    assert "from agentfn import tool" in readme
