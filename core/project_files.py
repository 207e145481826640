"""Files a blueprint names (tool modules, rule files) resolve inside the project, only.

A stored workflow is user input: ``tools: [/srv/app/anything.py]`` would import any file on
the server and ``rules: /etc/shadow`` would read any file. Every such name goes through
``project_file``: relative, no ``..``, and still inside the project once symlinks are
resolved. The refusal reads the same whether or not the path exists outside, so it tells an
attacker nothing about the server's files.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from agentfn.errors import UserError

__all__ = ["project_file"]


def project_file(base_dir: Path, name: str, what: str) -> Path:
    """The absolute path of ``name`` inside ``base_dir``; ``UserError`` if it is not inside."""
    refused = UserError(f"{what} {name!r} must be a relative path inside the project folder")
    posix = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or posix.is_absolute()
        or PureWindowsPath(name).drive
        or ".." in posix.parts
    ):
        raise refused
    root = base_dir.resolve()
    target = (root / posix).resolve()
    if not target.is_relative_to(root):  # a symlink that leads out
        raise refused
    return target
