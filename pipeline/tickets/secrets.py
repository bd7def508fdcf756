"""Secrets referenced by the routing file: read from the environment or a file, never printed.

A routing file names where a secret lives (``{env: NAME}`` or ``{file: PATH}``), never the secret
itself, so the file can sit in the repository. :class:`Secret` hides its value from ``repr``/``str``
so a log line or a traceback that formats a destination cannot leak it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class Secret:
    """A secret string; ``reveal()`` is the only way to read it."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source  # "env:NAME" or "file:PATH": safe to print

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.source}, ***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self.source)


def resolve_secret(ref: object, env: Mapping[str, str], base: Path) -> Secret:
    """``{env: NAME}`` or ``{file: PATH}`` (relative to the routing file) -> :class:`Secret`.

    Raises ``ValueError`` with a message that names the reference, never the value.
    """
    if not isinstance(ref, Mapping) or len(ref) != 1 or next(iter(ref)) not in ("env", "file"):
        raise ValueError("a secret is {env: NAME} or {file: PATH}; secrets never appear in the file itself")
    kind, name = next(iter(ref.items()))
    if not isinstance(name, str) or not name:
        raise ValueError(f"secret {kind}: expected a name")
    if kind == "env":
        value = env.get(name)
        if not value:
            raise ValueError(f"secret env:{name} is not set")
        return Secret(value, f"env:{name}")
    path = Path(name) if Path(name).is_absolute() else base / name
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ValueError(f"secret file:{path}: cannot read ({err.strerror})") from None
    if not value:
        raise ValueError(f"secret file:{path} is empty")
    return Secret(value, f"file:{path}")
