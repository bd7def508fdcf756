"""Provisioning files: the plugin data source, the dashboard provider and the compose file agree."""

from pathlib import Path

import yaml

from pipeline.report.dashboards import DEFAULT_DIR, PLUGIN_TYPE

DASH = Path(__file__).resolve().parents[2] / "dashboards"


def test_datasource_is_the_official_plugin_with_a_read_only_user():
    doc = yaml.safe_load((DASH / "provisioning/datasources/clickhouse.yaml").read_text())
    (ds,) = doc["datasources"]
    assert ds["type"] == PLUGIN_TYPE and doc["apiVersion"] == 1
    j = ds["jsonData"]
    assert {"host", "port", "protocol", "defaultDatabase", "username"} <= set(j)
    assert j["protocol"] in ("http", "native") and j["defaultDatabase"] == "tronrisk"
    assert "password" in ds["secureJsonData"]
    users = (DASH / "clickhouse/users.xml").read_text()
    assert "<grafana>" in users and "<readonly>2</readonly>" in users


def test_compose_wires_server_grafana_and_pipeline_to_the_provisioned_paths():
    compose = yaml.safe_load((DASH / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"clickhouse", "grafana", "pipeline"} <= set(services)
    grafana = services["grafana"]
    assert PLUGIN_TYPE in grafana["environment"]["GF_INSTALL_PLUGINS"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if v.startswith("."))
    assert (DASH / mounts["./json"].replace("/var/lib/grafana/dashboards/tronrisk", "json")).resolve() == DEFAULT_DIR
    provider = yaml.safe_load((DASH / "provisioning/dashboards/tronrisk.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == mounts["./json"]
    assert mounts["./provisioning"] == "/etc/grafana/provisioning"
    env = grafana["environment"]
    assert env["TRONRISK_CH_HOST"] == "clickhouse" and env["TRONRISK_CH_READER"] == "grafana"
    assert services["pipeline"]["environment"]["TRONRISK_CLICKHOUSE_DSN"].startswith("http://pipeline:")
    ch_mounts = [v.split(":")[0] for v in services["clickhouse"]["volumes"] if v.startswith(".")]
    assert all((DASH / m).is_file() for m in ch_mounts)
