"""agentfn installs as one import package, ``agentfn``, and never collides with a user's own.

The folders ``core/``, ``adapters/``, ``functions/`` and ``events/`` are generic names that real
projects and PyPI packages use; none of them may appear in site-packages, in a worker's
imports, or in a module loaded under two names.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "functions" / "local" / "example"
FOLDERS = ("core", "adapters", "functions", "events")
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]


def _build_wheel(source: Path, out: Path) -> Path:
    """``pip wheel`` offline: no index, no build isolation (the dev extra has setuptools)."""
    subprocess.run(
        [
            *PIP,
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=out,
    )
    [wheel] = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def agentfn_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))


def test_the_wheel_holds_agentfn_and_nothing_else(agentfn_wheel: Path) -> None:
    with zipfile.ZipFile(agentfn_wheel) as zf:
        names = zf.namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {
        "agentfn",
        f"{agentfn_wheel.name.split('-')[0]}-{agentfn_wheel.name.split('-')[1]}.dist-info",
    }
    # Every module of every mapped folder ships, under its package name.
    for folder, package in (
        ("core", "agentfn"),
        ("adapters", "agentfn/adapters"),
        ("functions", "agentfn/functions"),
        ("events", "agentfn/events"),
    ):
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder)
            if package == "agentfn" and rel.parts[0] in ("adapters", "functions", "events"):
                continue
            assert f"{package}/{rel.as_posix()}" in names, rel
    assert "agentfn/py.typed" in names
    assert "agentfn/functions/local/example/workflow.yaml" in names
    with zipfile.ZipFile(agentfn_wheel) as zf:
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "agentfn = agentfn.functions.local.cli:main" in entry_points


def _user_project(tmp_path: Path) -> Path:
    """A project with its own core/, adapters/, functions/ and events/ packages."""
    project = tmp_path / "user-project"
    for name in FOLDERS:
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text(
            f"raise ImportError('the user project\\'s own {name} package was imported')\n"
        )
    (project / "core" / "engine.py").write_text("raise ImportError('user core.engine')\n")
    return project


def test_agentfn_run_inside_a_project_with_its_own_core_and_events(tmp_path: Path) -> None:
    project = _user_project(tmp_path)
    agentfn = Path(sys.executable).with_name("agentfn")
    env = {
        **os.environ,
        "PYTHONPATH": str(project),  # the user's packages come first on the path
        "AGENTFN_HOME": str(tmp_path / "home"),
    }
    result = subprocess.run(
        [
            str(agentfn),
            "run",
            str(EXAMPLE / "workflow.yaml"),
            "-i",
            "subject=collisions",
            "--workers",
            "2",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "completed" in result.stdout and "A full brief" in result.stdout
    assert "own" not in result.stderr  # no worker imported the user's packages


def _fresh_venv(path: Path) -> Path:
    """An empty environment; pip from this interpreter installs into it (``--python``)."""
    venv.EnvBuilder(with_pip=False).create(path)
    return path / "bin" / "python"


def test_a_package_named_events_installs_beside_agentfn_and_both_survive(
    tmp_path: Path, agentfn_wheel: Path
) -> None:
    # A stand-in for PyPI's `events` (no network in tests): its own top-level `events` package.
    other = tmp_path / "events-src"
    (other / "events").mkdir(parents=True)
    (other / "events" / "__init__.py").write_text("class Events:\n    origin = 'pypi-events'\n")
    (other / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=69"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "events"\nversion = "0.5"\n'
        "[tool.setuptools]\npackages = ['events']\n"
    )
    events_wheel = _build_wheel(other, tmp_path)

    env_dir = tmp_path / "venv"
    python = _fresh_venv(env_dir)
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    deps = Path(__import__("pydantic").__file__).parents[1]  # this venv's dependencies

    def pip(*args: str) -> None:
        subprocess.run(
            [*PIP, "--python", str(python), *args], check=True, capture_output=True, timeout=300
        )

    pip("install", "--no-index", "--no-deps", str(agentfn_wheel))
    pip("install", "--no-index", "--no-deps", str(events_wheel))
    assert not any((site / name).exists() for name in ("core", "adapters", "functions")), sorted(
        p.name for p in site.iterdir()
    )

    check = (
        "import sys; sys.path.append(sys.argv[1])\n"
        "import events; assert events.Events.origin == 'pypi-events'\n"
        "from agentfn.events.cloudevents import step_ready\n"
        "assert step_ready('r', 's', 'c')['type'] == 'agentfn.step.ready'\n"
        "from agentfn import tool; assert callable(tool)\n"
    )
    subprocess.run([str(python), "-c", check, str(deps)], check=True, timeout=120, cwd=tmp_path)

    pip("uninstall", "-y", "agentfn")
    after = "import events; assert events.Events.origin == 'pypi-events'"
    subprocess.run([str(python), "-c", after], check=True, timeout=60, cwd=tmp_path)
    assert not (site / "agentfn").exists()
