"""The compose deployment is safe by default (finding 12), checked statically: no Docker here.

Found: ClickHouse and Grafana published on every interface, known default passwords, Grafana
admin/admin, the pipeline user allowed from anywhere with DDL on every database.
"""

from __future__ import annotations

import ipaddress
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from pipeline.report.dashboards import load_dashboards

DASH = Path(__file__).resolve().parents[2] / "dashboards"
COMPOSE_TEXT = (DASH / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
USERS = ET.parse(DASH / "clickhouse" / "users.xml").getroot().find("users")
SECRETS = ("TRONRISK_CH_WRITER_PASSWORD", "TRONRISK_CH_READER_PASSWORD", "TRONRISK_GRAFANA_ADMIN_PASSWORD")


def test_every_published_port_is_bound_to_loopback():
    published = [(name, p) for name, s in COMPOSE["services"].items() for p in s.get("ports", [])]
    assert {n for n, _ in published} == {"clickhouse", "grafana"}
    for name, port in published:
        host = str(port).split(":")
        assert len(host) == 3 and host[0] == "127.0.0.1", f"{name}: {port} is published beyond this machine"


def test_no_password_has_a_default_and_compose_refuses_to_start_without_one():
    assert not re.search(r"PASSWORD[^}\n]*:-", COMPOSE_TEXT), "a password with a default value"
    for var in SECRETS:
        uses = re.findall(r"\$\{" + var + r"(:?[?-])?([^}]*)\}", COMPOSE_TEXT)
        assert uses and all(op == ":?" and msg.strip() for op, msg in uses), (var, uses)
    grafana = COMPOSE["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${TRONRISK_GRAFANA_ADMIN_PASSWORD:?")
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false" and grafana["GF_USERS_ALLOW_SIGN_UP"] == "false"
    example = (DASH / "env.example").read_text()
    assert all(re.search(rf"^{v}=$", example, re.MULTILINE) for v in SECRETS)  # names only, no values


def test_each_container_gets_only_the_secrets_it_needs():
    env = {name: " ".join(f"{k}={v}" for k, v in (s.get("environment") or {}).items())
           for name, s in COMPOSE["services"].items()}
    assert "TRONRISK_GRAFANA_ADMIN_PASSWORD" not in env["clickhouse"] + env["pipeline"]
    assert "TRONRISK_CH_WRITER_PASSWORD" not in env["grafana"]
    assert "TRONRISK_CH_READER_PASSWORD" not in env["pipeline"]


def _user(name: str) -> ET.Element:
    user = USERS.find(name)
    assert user is not None, name
    return user


def _networks(user: ET.Element) -> list[ipaddress._BaseNetwork]:
    nets = user.find("networks")
    assert nets is not None and not nets.findall("host_regexp") and not nets.findall("host")
    return [ipaddress.ip_network(ip.text.strip(), strict=False) for ip in nets.findall("ip")]


def test_users_log_in_only_from_the_compose_network_with_passwords_from_the_environment():
    subnet = ipaddress.ip_network(COMPOSE["networks"]["tronrisk"]["ipam"]["config"][0]["subnet"])
    for name, var in (("pipeline", "TRONRISK_CH_WRITER_PASSWORD"), ("grafana", "TRONRISK_CH_READER_PASSWORD")):
        user = _user(name)
        password = user.find("password")
        assert password is not None and password.get("from_env") == var and not (password.text or "").strip()
        assert _networks(user) == [subnet], name
        assert user.find("access_management") is None and user.find("allow_databases") is None
    default = _user("default")
    assert default.find("networks").get("replace") == "replace"
    assert all(n.is_loopback for n in _networks(default))
    for svc in COMPOSE["services"].values():
        assert svc.get("networks") == ["tronrisk"]


def _grants(name: str) -> list[str]:
    return [q.text.strip() for q in _user(name).find("grants").findall("query")]


def test_the_pipeline_user_has_its_own_database_only():
    assert _grants("pipeline") == ["GRANT ALL ON tronrisk.*"]
    assert COMPOSE["services"]["clickhouse"]["environment"]["CLICKHOUSE_DB"] == "tronrisk"
    dsn = COMPOSE["services"]["pipeline"]["environment"]["TRONRISK_CLICKHOUSE_DSN"]
    assert dsn.startswith("http://pipeline:${TRONRISK_CH_WRITER_PASSWORD:?") and dsn.endswith("@clickhouse:8123/tronrisk")


def _dashboard_tables() -> set[str]:
    tables: set[str] = set()
    for board in load_dashboards():
        sqls = [p.sql for p in board.panels] + [str(v.get("query", "")) for v in board.raw["templating"]["list"]]
        for sql in sqls:
            tables |= set(re.findall(r"\b(?:FROM|JOIN)\s+([A-Za-z_]\w*)\b(?!\s*\()", sql))
    return tables


def test_grafana_reads_exactly_the_tables_the_dashboards_need_and_no_analyst_notes():
    grants = _grants("grafana")
    parsed = [re.fullmatch(r"GRANT SELECT(?:\(([\w, ]+)\))? ON tronrisk\.(\w+)", g) for g in grants]
    assert all(parsed), [g for g, m in zip(grants, parsed, strict=True) if not m]
    tables = {m.group(2): m.group(1) for m in parsed}
    assert set(tables) == _dashboard_tables()
    columns = {c.strip() for c in tables["dispositions"].split(",")}
    assert {"alert_id", "at", "action", "disposition"} <= columns and not {"analyst", "note"} & columns
    assert _user("grafana").find("profile").text == "grafana_readonly"
    profile = ET.parse(DASH / "clickhouse" / "users.xml").getroot().find("profiles/grafana_readonly")
    assert profile.find("readonly").text == "2"
