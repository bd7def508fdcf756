"""Where inside a rule's condition an error is, as a position in the rule file.

Reading the YAML itself is :mod:`pipeline.yamlsafe` (shared with ticket routing and list
sidecars: no aliases, bounded size, ``file:line`` errors); its :class:`MarkedMap` keeps the node of
every value, whose style and start mark let us place an expression error *inside* a multi-line
condition.
"""

from __future__ import annotations

import yaml

from pipeline.yamlsafe import MarkedMap, load_yaml  # noqa: F401 - re-exported for older imports


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
