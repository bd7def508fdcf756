"""Ticket destinations: one adapter per tracker API, chosen by the routing file's ``kind``."""

from __future__ import annotations

from pipeline.tickets.destinations.base import (
    Adapter,
    Http,
    Message,
    Request,
    Response,
    Ticket,
    TransportError,
)
from pipeline.tickets.destinations.github import GitHubAdapter
from pipeline.tickets.destinations.jira import JiraAdapter
from pipeline.tickets.destinations.opsgenie import OpsgenieAdapter
from pipeline.tickets.destinations.pagerduty import PagerDutyAdapter
from pipeline.tickets.destinations.servicenow import ServiceNowAdapter
from pipeline.tickets.destinations.webhook import WebhookAdapter
from pipeline.tickets.routing import Destination

ADAPTERS: dict[str, type[Adapter]] = {a.kind: a for a in (
    WebhookAdapter, JiraAdapter, ServiceNowAdapter, PagerDutyAdapter, OpsgenieAdapter, GitHubAdapter)}


def adapter_for(dest: Destination) -> Adapter:
    return ADAPTERS[dest.kind](dest)


__all__ = ["ADAPTERS", "Adapter", "Http", "Message", "Request", "Response", "Ticket", "TransportError", "adapter_for"]
