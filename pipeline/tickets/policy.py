"""Where ticket destinations may point, and where their secret files may live.

The routing file is edited by people and re-read at start; whoever can edit it must not be able to
turn the delivery worker into a client of internal services, or make it send credentials in the
clear, or read any file the process can read. So a destination URL must be ``https://`` (plain
``http://`` only to the loopback host, which is what tests use), carry no ``user:password@``, and,
when ``tickets.allowed_hosts`` is set, name one of those hosts; ``{file: ...}`` secrets must lie
under one directory (``tickets.secrets_dir``, by default the routing file's own). The same URL
check runs again on every request (:class:`pipeline.tickets.destinations.base.Http`), and
redirects are never followed, so a tracker cannot send our headers elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pipeline.yamlsafe import MAX_BYTES

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class DestinationPolicy:
    """The settings that bound a routing file (``[tickets]`` and ``analytics.max_yaml_bytes``)."""

    allowed_hosts: tuple[str, ...] = ()  # exact host names, or ".example.com" for any subdomain; () = any
    secrets_dir: str = ""  # "" = the routing file's directory
    max_yaml_bytes: int = MAX_BYTES

    @classmethod
    def from_settings(cls, settings: Any) -> DestinationPolicy:
        """From a :class:`pipeline.config.Settings`."""
        t = settings.tickets
        return cls(tuple(h.strip().lower() for h in t.allowed_hosts if h.strip()), t.secrets_dir,
                   settings.analytics.max_yaml_bytes)


def host_allowed(host: str, allowed_hosts: Sequence[str]) -> bool:
    """``host`` equals an entry, or ends with an entry that starts with a dot (``.atlassian.net``)."""
    host = host.lower().rstrip(".")
    return any(host == a or (a.startswith(".") and host.endswith(a)) for a in allowed_hosts)


def url_problem(url: str, allowed_hosts: Sequence[str] = ()) -> str | None:
    """Why ``url`` may not receive tickets, or ``None`` when it may."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return "expected https://host/..., got a malformed URL"
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host:
        return "expected https://host/..."
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not allowed: put them in the destination's secret keys"
    if scheme == "http" and host not in LOOPBACK:
        return f"plain http:// is only allowed to {', '.join(sorted(LOOPBACK))} (tests); use https://"
    if allowed_hosts and not host_allowed(host, allowed_hosts):
        return f"host {host[:100]!r} is not in tickets.allowed_hosts ({', '.join(allowed_hosts)[:200]})"
    return None
