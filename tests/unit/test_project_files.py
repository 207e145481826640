"""Tool modules and rule files a blueprint names stay inside the project folder.

Before: ``tools: [/abs/evil.py]`` or ``../evil.py`` imported any file on the server while the
workflow was validated, and ``rules: /etc/…`` read any file. The refusal must read the same
whether the outside path exists or not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentfn.errors import BlueprintError, UserError
from agentfn.project_files import project_file
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import HEADER, project

BODY = "nodes:\n  - {id: a, type: agent, agent: echo}\n"


def _evil(tmp_path: Path) -> Path:
    """A tool module outside the project that leaves a mark if it is ever imported."""
    evil = tmp_path / "outside" / "evil.py"
    evil.parent.mkdir()
    marker = tmp_path / "imported"
    evil.write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    return evil


def _with_header(wf: Path, old: str, new: str) -> None:
    wf.write_text(wf.read_text().replace(old, new, 1))


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink"])
def test_a_tool_module_outside_the_project_is_refused_and_never_imported(
    tmp_path: Path, kind: str
) -> None:
    evil = _evil(tmp_path)
    wf = project(tmp_path, BODY)
    name = {"absolute": str(evil), "dotdot": "../outside/evil.py", "symlink": "link.py"}[kind]
    if kind == "symlink":
        (wf.parent / "link.py").symlink_to(evil)
    _with_header(wf, "tools: [tools.py]", f"tools: [tools.py, {name!r}]")
    with pytest.raises(BlueprintError, match="must be a relative path inside the project"):
        load_blueprint(wf)
    assert not (tmp_path / "imported").exists()


def test_a_rule_file_outside_the_project_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$very-secret-hash\n")
    wf = project(tmp_path, BODY)
    _with_header(wf, "rules: rules.yaml", f"rules: {secret}")
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(wf)
    assert "must be a relative path inside the project" in str(caught.value)
    assert "very-secret" not in str(caught.value)


def test_the_refusal_does_not_tell_whether_an_outside_path_exists(tmp_path: Path) -> None:
    (tmp_path / "exists.py").write_text("")
    messages = []
    for name in ("../exists.py", "../missing.py"):
        with pytest.raises(UserError) as caught:
            project_file(tmp_path / "project", name, "tool module")
        messages.append(caught.value.message.replace(name, "<name>"))
    assert messages[0] == messages[1]


@pytest.mark.parametrize(
    "name", ["", "/etc/passwd", "a/../../x", "..", "C:\\x.py", "a\\..\\x", "x\x00.py"]
)
def test_names_that_are_not_plain_relative_paths_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError, match="inside the project folder"):
        project_file(tmp_path, name, "tool module")


def test_paths_inside_the_project_resolve(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.py").write_text("")
    (tmp_path / "alias.py").symlink_to(tmp_path / "sub" / "t.py")
    assert project_file(tmp_path, "sub/t.py", "tool module") == (tmp_path / "sub/t.py").resolve()
    assert project_file(tmp_path, "./alias.py", "x") == (tmp_path / "sub/t.py").resolve()
    assert "tools: [tools.py]" in HEADER  # the header these tests rewrite
