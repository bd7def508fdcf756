"""YAML for the files people edit while the pipeline runs: rule files, ticket routing, list sidecars.

These files are untrusted input that a running pipeline re-reads on its own (hot reload), so
reading one must cost at most what its size says and must fail as one ``file:line: reason``:

* **No aliases or anchors.** ``&a`` / ``*a`` let a 500-byte file describe a value of billions of
  elements (the "billion laughs"); nothing in our files needs them, so they are refused where
  they appear instead of being counted.
* **Bounded size, depth and node count**: a file larger than ``max_bytes`` (setting
  ``analytics.max_yaml_bytes``, 1 MiB by default) is refused before it is read; nesting deeper
  than :data:`MAX_DEPTH` or more than :data:`MAX_NODES` values stop the composer, which also keeps
  the composer's recursion far from Python's limit.
* **Plain tags only**: ``!!python/...``, ``!!binary``, ``!!set`` and custom tags are refused; the
  safe constructor would not run code, but there is no reason to build anything but strings,
  numbers, booleans, nulls, lists and mappings (implicit dates stay as PyYAML resolves them).
* **Short errors**: a message quotes at most :data:`EXCERPT` characters of the input
  (:func:`excerpt`), so an error line can be logged, stored and shown whatever the file holds.
* **Positions kept**: every mapping is a :class:`MarkedMap` that knows its own line, the line of
  each key and the node of each value (rule errors point inside multi-line conditions), and
  duplicate keys are an error instead of the last one silently winning.

libyaml parses when it is installed (about four times faster than the pure-Python parser); the
composer that enforces the limits is PyYAML's own, fed with libyaml's events.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent, CollectionStartEvent, NodeEvent
from yaml.resolver import Resolver

from pipeline.errors import ConfigError

MAX_BYTES = 1 << 20  # default of analytics.max_yaml_bytes
MAX_DEPTH = 64  # nesting levels; our files use fewer than 10
MAX_NODES = 200_000  # scalars + lists + mappings; the shipped rules have ~3,000
EXCERPT = 60  # characters of input an error message may quote
_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map"))

try:  # libyaml's parser when present; the events are the same either way
    from yaml._yaml import CParser as _Parser

    def _init_parser(loader: Any, text: str) -> None:
        _Parser.__init__(loader, text)
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml.parser import Parser as _Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, _Parser):  # type: ignore[no-redef]
        pass

    def _init_parser(loader: Any, text: str) -> None:
        Reader.__init__(loader, text)
        Scanner.__init__(loader)
        yaml.parser.Parser.__init__(loader)


class YamlError(ConfigError):
    """A YAML file is refused; ``str()`` is ``path:line: reason`` (``line`` 0: the file as a whole)."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")
        self.path, self.line, self.reason = path, line, reason


class MarkedMap(dict):
    """A dict that also knows the 1-based line of itself, of each key, and each value's node."""

    line: int = 0
    key_lines: dict[Any, int]
    value_nodes: dict[Any, yaml.Node]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines, self.value_nodes = {}, {}


class _Repr(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxdict, self.maxstring, self.maxother = 2, 4, 4, EXCERPT, EXCERPT

    def repr_MarkedMap(self, x: dict, level: int) -> str:  # reprlib dispatches on the type name
        return self.repr_dict(x, level)


_REPR = _Repr()


def excerpt(value: object, limit: int = EXCERPT) -> str:
    """``repr(value)`` cut to about ``limit`` characters, without ever building the whole repr."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(message: str, limit: int = 400) -> str:
    """One error line of at most ``limit`` characters (the last guard before a log or a table)."""
    message = message.replace("\n", " ")
    return message if len(message) <= limit else message[: limit - 3] + "..."


class _Loader(Composer, _Parser, SafeConstructor, Resolver):
    """libyaml (or PyYAML) events -> a composer that refuses aliases, anchors, tags and excess."""

    def __init__(self, text: str) -> None:
        _init_parser(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            event = self.get_event()
            raise ComposerError(None, None, f"aliases (*{event.anchor[:EXCERPT]}) are not allowed; write the "
                                            "value out", event.start_mark)
        event = self.peek_event()
        if isinstance(event, NodeEvent) and event.anchor is not None:
            raise ComposerError(None, None, f"anchors (&{event.anchor[:EXCERPT]}) are not allowed",
                                event.start_mark)
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in _TAGS:
            raise ComposerError(None, None, f"tag {tag[:EXCERPT]!r} is not allowed", event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise ComposerError(None, None, f"more than {MAX_NODES:,} values", event.start_mark)
        nested = isinstance(event, CollectionStartEvent)
        if nested:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= nested

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as err:  # e.g. an integer of 5,000 digits, 2024-02-30
            raise ConstructorError(None, None, f"cannot read value: {str(err)[:EXCERPT]}",
                                   node.start_mark) from None


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> MarkedMap:
    loader.flatten_mapping(node)
    out = MarkedMap()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool):
            raise ConstructorError(None, None, "mapping keys must be plain scalars", key_node.start_mark)
        if key in out:
            raise ConstructorError(None, None, f"duplicate key {excerpt(key)}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
        out.value_nodes[key] = value_node
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


def load_yaml(text: str, path: str, *, max_bytes: int = MAX_BYTES) -> Any:
    """Parse one YAML document within the limits above; any problem is a :class:`YamlError`."""
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise YamlError(path, 1, f"larger than {max_bytes:,} bytes (setting analytics.max_yaml_bytes)")
    loader = None
    try:
        loader = _Loader(text)
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        what = " ".join(p for p in (err.context, err.problem) if p)
        raise YamlError(path, mark.line + 1 if mark else 1, clip(f"invalid YAML: {what}", 200)) from None
    except yaml.reader.ReaderError as err:  # a control character, a lone surrogate
        line = text[: max(err.position, 0)].count("\n") + 1
        raise YamlError(path, line, f"invalid YAML: unacceptable character #x{err.character:04x}") from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError, MemoryError) as err:  # lone surrogates
        raise YamlError(path, 1, clip(f"invalid YAML: {type(err).__name__}: {err}", 200)) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml_file(path: str | Path, *, max_bytes: int = MAX_BYTES) -> str:
    """The text of ``path``, refused unread when larger than ``max_bytes`` or not UTF-8."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as err:
        raise YamlError(str(p), 0, f"cannot read: {err.strerror or err}") from None
    if len(data) > max_bytes:
        raise YamlError(str(p), 1, f"larger than {max_bytes:,} bytes (setting analytics.max_yaml_bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise YamlError(str(p), line, "not UTF-8 text") from None


def plain(value: Any) -> Any:
    """``value`` with every :class:`MarkedMap` turned into a plain dict (no YAML nodes: picklable)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def load_yaml_file(path: str | Path, *, max_bytes: int = MAX_BYTES) -> Any:
    """:func:`read_yaml_file` then :func:`load_yaml`."""
    return load_yaml(read_yaml_file(path, max_bytes=max_bytes), str(path), max_bytes=max_bytes)
