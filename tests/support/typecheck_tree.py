"""Build ``.typecheck/agentfn``: the installed package's shape as a tree of symlinks.

pyproject.toml maps the fixed top-level folders into one package (``core/`` → ``agentfn``,
``adapters/`` → ``agentfn.adapters``…). The import system follows that mapping (setuptools'
editable finder), mypy does not: it names modules after folders. ``make lint`` runs this
first and points mypy at the tree, so mypy sees exactly the modules Python imports.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREE = ROOT / ".typecheck"


def package_dirs() -> dict[str, Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in mapping.items()}


def build() -> Path:
    shutil.rmtree(TREE, ignore_errors=True)
    mapping = package_dirs()
    for name in sorted(mapping, key=lambda n: n.count(".")):
        target = TREE.joinpath(*name.split("."))
        nested = {n.split(".")[name.count(".") + 1] for n in mapping if n.startswith(name + ".")}
        target.mkdir(parents=True, exist_ok=True)
        for entry in mapping[name].iterdir():
            if entry.name != "__pycache__" and entry.name not in nested:
                (target / entry.name).symlink_to(entry)
    return TREE / "agentfn"


if __name__ == "__main__":
    sys.stdout.write(f"{build()}\n")
