"""One root error for everything the pipeline raises on purpose.

Bad *input* (a malformed block, a broken transaction) is data, not an exception: it becomes a
dead-letter record. Exceptions are for things that stop a command: bad configuration, a rule file
that does not compile, an unreadable model, an unreachable DSN. Each carries a message that names
the file, line or field so the CLI can print it as one line.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every deliberate error; the CLI prints ``str(err)`` as one line and exits non-zero."""


class ConfigError(PipelineError):
    """A setting, DSN or command-line value is missing or invalid."""


class InputError(PipelineError):
    """An input file is missing or cannot be read at all (as opposed to one bad line in it)."""


class DecodeError(PipelineError):
    """A block or transaction does not have the shape the TRON node API gives it.

    ``field`` is a dotted path into the JSON (``transactions[3].raw_data.contract[0]``) so a
    dead-letter reason says exactly where the problem is.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.reason = message  # without the field: to re-raise under a longer path
        self.field = field


class AddressError(DecodeError):
    """A TRON address fails length, prefix, alphabet or checksum validation."""


class StorageError(PipelineError):
    """ClickHouse could not be reached, migrated or written."""


class RuleError(PipelineError):
    """A rule file does not parse or compile; the message starts with ``file:line``."""


class ModelError(PipelineError):
    """A model file is missing, corrupt or incompatible; the message names the file."""
