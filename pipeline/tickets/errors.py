"""Errors of the ticket package, under the one root :class:`pipeline.errors.PipelineError`."""

from __future__ import annotations

from pipeline.errors import ConfigError, PipelineError
from pipeline.yamlsafe import clip


class RoutingError(ConfigError):
    """``routing.yaml`` is invalid; ``errors`` lists every problem as ``file:line: message``."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = [clip(e) for e in errors]  # one bounded line each, whatever the file holds
        errors = self.errors
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{errors[0]}{more}" if errors else "invalid routing")


class SecretError(ConfigError):
    """A secret named in the routing file is missing from the environment or its file."""


class DeliveryError(PipelineError):
    """An operator command on the outbox failed (unknown ticket id, unknown destination)."""
