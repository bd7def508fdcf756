"""Keep secrets out of everything the pipeline writes: logs, errors, tables, tickets.

Node gateways put API keys in the URL path (``https://gw.example/<key>/``) or its query, DSNs carry
passwords, and the TronGrid key travels in a header that a hostile node could echo back in an
error body. So:

* :func:`redact_url` keeps a node URL's scheme, host and port and hides user info, path and query
  (we cannot tell a key in a path from a route, so every path is hidden);
* :func:`redact_dsn` hides a ClickHouse DSN's password (user, host and database stay: they say
  which database a message is about and are not secrets);
* :func:`register_secret` remembers a secret value (an API key, a password, a URL's path), and
  :func:`scrub` replaces every remembered value in free text, such as a library's exception
  message that quotes the URL it failed on;
* registering the first secret installs a log-record factory that scrubs every log line, so
  third-party debug logs (urllib3 prints request paths) cannot leak one either;
* :func:`read_secret_file` reads a key or password from a file (the way to keep it out of ``ps``),
  and :func:`warn_command_line` says, in one line, that a secret given as a flag is visible there.
"""

from __future__ import annotations

import logging
import re
import stat
import threading
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

MASK = "***"
MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words; such passwords are not secret anyway
MIN_PATH_SECRET_CHARS = 8  # a URL path segment or user name this long may be a key ("v1", "api" are not)
MAX_SECRET_FILE_BYTES = 64 * 1024

_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()
_factory_installed = False


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` plus ``/***``, ``?***``, ``***@`` where the URL had a path, a
    query or user info; ``<unparseable URL>`` for text that is not a URL."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except (ValueError, AttributeError):
        return "<unparseable URL>"
    if not parts.scheme or not host:
        return "<unparseable URL>"
    host = f"[{host}]" if ":" in host else host
    user = f"{MASK}@" if parts.username is not None or parts.password is not None else ""
    out = f"{parts.scheme.lower()}://{user}{host}" + (f":{port}" if port is not None else "")
    if parts.path not in ("", "/"):
        out += f"/{MASK}"
    if parts.query:
        out += f"?{MASK}"
    if parts.fragment:
        out += f"#{MASK}"
    return out


def redact_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ``***``; ``chdb://`` DSNs hold no secret.

    The user info ends at the *last* ``@`` (as ``urllib.parse`` reads it), so a password that
    itself contains ``@`` is hidden whole.
    """
    if not isinstance(dsn, str):
        return "<not a DSN>"
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        return f"<not a DSN: {len(dsn)} characters>" if "@" in dsn or ":" in dsn else dsn
    if scheme.lower() == "chdb":
        return dsn
    userinfo, at, hostpart = rest.rpartition("@")
    hostpart, q, _query = hostpart.partition("?")
    tail = hostpart + (f"?{MASK}" if q else "")
    if not at:
        return f"{scheme}://{tail}"
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}:{MASK}@{tail}" if colon else f"{scheme}://{user}@{tail}"


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may be secret: the password, query values, and a user name or path
    segment long enough to be a key (short ones are words like "v1" or "admin", left readable)."""
    try:
        parts = urlsplit(url.strip())
    except (ValueError, AttributeError):
        return []
    out = [parts.password] if parts.password else []
    candidates = (parts.username or "", *parts.path.split("/"))
    out += [seg for seg in candidates if len(seg) >= MIN_PATH_SECRET_CHARS]
    for pair in parts.query.split("&"):
        value = pair.partition("=")[2]
        if value:
            out.append(value)
    return out


def register_secret(*values: str | None) -> None:
    """Remember secret values so :func:`scrub` and every later log line mask them."""
    global _pattern
    fresh = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_CHARS} - _secrets
    if not fresh:
        return
    with _lock:
        _secrets.update(fresh)
        # longest first, so a secret that contains another is masked whole
        _pattern = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))
    _install_log_factory()


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def _install_log_factory() -> None:
    """Wrap the log-record factory once: a record whose text holds a secret gets the scrubbed text."""
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        _factory_installed = True
        base = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logging module's business
            return record
        clean = scrub(message)
        if clean is not message and clean != message:
            record.msg, record.args = clean, None
        return record

    logging.setLogRecordFactory(factory)


def read_secret_file(path: str | Path, what: str) -> str:
    """The secret held in ``path`` (surrounding whitespace stripped), registered for scrubbing.

    One clear :class:`ConfigError` when the file is missing, empty, not text or too large; a
    warning when other users can read it.
    """
    p = Path(path)
    try:
        info = p.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{what} {p}: not a regular file")
        if info.st_size > MAX_SECRET_FILE_BYTES:
            raise ConfigError(f"{what} {p}: {info.st_size} bytes; a secret file holds one line")
        text = p.read_bytes().decode("utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"{what} {p}: file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {p}: not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(f"{what} {p}: {err.strerror or err}") from None
    if not text:
        raise ConfigError(f"{what} {p}: file is empty")
    if "\n" in text:
        raise ConfigError(f"{what} {p}: expected one line")
    if info.st_mode & 0o077:
        log.warning("%s %s can be read by other users (mode %o); chmod 600 it", what, p, info.st_mode & 0o777)
    register_secret(text)
    return text


def warn_command_line(flag: str, instead: str) -> None:
    """One warning line: a secret passed as ``flag`` is visible to every local user in ``ps``."""
    log.warning("%s on the command line is visible to other users in `ps` and in shell history; use %s "
                "instead", flag, instead)
