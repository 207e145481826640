"""Lists the packages under each folder that pyproject.toml's package-dir maps into agentfn.

pyproject.toml cannot discover sub-packages of a renamed folder, so this finds them: a new
sub-package needs no edit anywhere to ship.
"""

import tomllib
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
mapping: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
    "setuptools"
]["package-dir"]
packages = [
    name
    for prefix, folder in mapping.items()
    for name in [prefix, *(f"{prefix}.{sub}" for sub in find_packages(folder))]
]
setup(packages=sorted(set(packages)))
