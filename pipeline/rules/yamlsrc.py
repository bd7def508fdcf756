"""YAML reading that remembers where every key and value came from.

PyYAML's safe loader forgets positions once it builds dicts, but a rule error is only useful with
``file:line``. This loader keeps, for every mapping, the line of each key and the node of each
value (whose style and start mark let us place an error *inside* a multi-line condition), and
rejects duplicate keys, which plain PyYAML silently lets the last one win.
"""

from __future__ import annotations

from typing import Any

import yaml

from pipeline.errors import RuleError


class MarkedMap(dict):
    """A dict that also knows the 1-based line of itself, of each key, and each value's node."""

    line: int = 0
    key_lines: dict[Any, int]
    value_nodes: dict[Any, yaml.Node]


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> MarkedMap:
    loader.flatten_mapping(node)
    out = MarkedMap()
    out.line = node.start_mark.line + 1
    out.key_lines, out.value_nodes = {}, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool):
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be plain scalars", key_node.start_mark)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
        out.value_nodes[key] = value_node
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


def load_yaml(text: str, path: str) -> Any:
    """Parse one YAML document; a syntax error becomes a :class:`RuleError` with ``path:line``."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        what = " ".join(p for p in (err.context, err.problem) if p)
        raise RuleError(f"{path}:{line}: invalid YAML: {what}") from None
    except yaml.YAMLError as err:
        raise RuleError(f"{path}:1: invalid YAML: {err}") from None


def position_in_scalar(node: yaml.Node, source_lines: list[str], line: int, column: int) -> tuple[int, int]:
    """Map a 1-based (line, column) inside a scalar's text to a 1-based position in the file.

    Exact for literal block scalars (``|``) and single-line plain or quoted scalars, which is how
    conditions are written; folded forms fall back to the scalar's first line.
    """
    start_line, start_col = node.start_mark.line, node.start_mark.column  # 0-based
    style = getattr(node, "style", None)
    if style == "|":
        file_line = start_line + line  # content starts on the line after the indicator
        first = start_line + 1  # the block's indentation is set by its first content line
        text = source_lines[first] if first < len(source_lines) else ""
        indent = len(text) - len(text.lstrip(" "))
        return file_line + 1, indent + column
    if node.start_mark.line == node.end_mark.line and line == 1:
        quote = 1 if style in ("'", '"') else 0
        return start_line + 1, start_col + quote + column
    return (start_line + 2 if style == ">" else start_line + 1), column
