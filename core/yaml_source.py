"""YAML loading that remembers where every value came from.

Blueprint errors must point at a file and line. PyYAML's composed node tree knows the line of
every mapping key and sequence item; we keep a map from data path (``("nodes", 3, "agent")``)
to line so that pydantic's error locations and our own semantic checks can be reported as
``workflow.yaml:14``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agentfn.documents import check_tree, check_yaml_nodes
from agentfn.errors import BlueprintError, UserError

PathKey = tuple[str | int, ...]
# libyaml's parser when PyYAML was built with it: blueprints are parsed on every cold start.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class YamlSource:
    data: Any
    file: str
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int | None:
        """Line of the deepest known prefix of ``path`` (1-based)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def where(self, path: PathKey) -> str:
        line = self.line_of(path)
        return f"{self.file}:{line}" if line is not None else self.file

    def error(self, path: PathKey, message: str) -> BlueprintError:
        dotted = dotted_path(path)
        prefix = f"{self.where(path)}: "
        return BlueprintError(
            prefix + (f"{dotted}: {message}" if dotted else message), field=dotted or None
        )


def dotted_path(path: PathKey) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def parse_yaml(text: str, file: str) -> YamlSource:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            check_yaml_nodes(node, field="body")
        data = loader.construct_document(node) if node is not None else None
        check_tree(data, field="body")
    except UserError as exc:
        raise BlueprintError(f"{file}: {exc.message}") from None
    except ValueError as exc:  # a scalar PyYAML cannot construct
        raise BlueprintError(f"{file}: invalid YAML: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise BlueprintError(f"{file}{line}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise BlueprintError(f"{file}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    source = YamlSource(data=data, file=file)
    if node is not None:
        _index(node, (), source.lines)
    return source


def load_yaml_file(path: Path) -> YamlSource:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BlueprintError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BlueprintError(f"{path}: cannot read: {exc}") from None
    return parse_yaml(text, str(path))


def _index(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            _index(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, i)
            lines[child] = item.start_mark.line + 1
            _index(item, child, lines)
