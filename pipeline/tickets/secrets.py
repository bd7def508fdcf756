"""Secrets referenced by the routing file: read from the environment or a file, never printed.

A routing file names where a secret lives (``{env: NAME}`` or ``{file: PATH}``), never the secret
itself, so the file can sit in the repository. :class:`Secret` hides its value from ``repr``/``str``
so a log line or a traceback that formats a destination cannot leak it.

A ``{file: PATH}`` secret is read only from under one directory (``tickets.secrets_dir``, by
default the routing file's): no ``..``, and the path with its symlinks resolved must still be
inside the directory, so an edit of the routing file cannot make the worker read (and send to a
tracker as a credential) ``/etc/shadow``, a key of another service or a file of another user. It
must be a regular file of at most :data:`MAX_SECRET_BYTES` (a FIFO would block the load).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

MAX_SECRET_BYTES = 64 * 1024


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
    """``{env: NAME}`` or ``{file: PATH}`` (relative to, and inside, directory ``base``) -> :class:`Secret`.

    Raises ``ValueError`` with a message that names the reference, never the value.
    """
    if not isinstance(ref, Mapping) or len(ref) != 1 or next(iter(ref)) not in ("env", "file"):
        raise ValueError("a secret is {env: NAME} or {file: PATH}; secrets never appear in the file itself")
    kind, name = next(iter(ref.items()))
    if not isinstance(name, str) or not name or len(name) > 1024 or "\0" in name:
        raise ValueError(f"secret {kind}: expected a name")
    if kind == "env":
        value = env.get(name)
        if not value:
            raise ValueError(f"secret env:{name} is not set")
        return Secret(value, f"env:{name}")
    path = Path(name) if Path(name).is_absolute() else base / name
    value = _read_inside(path, base).strip()
    if not value:
        raise ValueError(f"secret file:{path} is empty")
    return Secret(value, f"file:{path}")


def _read_inside(path: Path, base: Path) -> str:
    """The text of ``path`` if it is a regular file inside ``base`` once symlinks are resolved."""
    if ".." in path.parts:
        raise ValueError(f"secret file:{path}: '..' is not allowed; secret files live under {base}")
    root = os.path.realpath(base)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root or real == root:
        raise ValueError(f"secret file:{path}: outside the secrets directory {base} "
                         "(setting tickets.secrets_dir)")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        raise ValueError(f"secret file:{path}: cannot read ({err.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"secret file:{path}: not a regular file")
        data = b""
        while len(data) <= MAX_SECRET_BYTES and (part := os.read(fd, MAX_SECRET_BYTES + 1 - len(data))):
            data += part
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise ValueError(f"secret file:{path}: larger than {MAX_SECRET_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"secret file:{path}: not UTF-8 text") from None
