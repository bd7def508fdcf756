"""Settings: one object, validated once; every mistake is one line naming the setting and its origin."""

import pytest

from pipeline.config import load_settings
from pipeline.errors import ConfigError


def test_layers_defaults_file_environment_flags(tmp_path):
    f = tmp_path / "risk.toml"
    f.write_text('[clickhouse]\nflush_rows = 1000\n[analytics]\nmodel = "m/iforest"\nshards = 8\n'
                 '[tokens."1002000"]\nsymbol = "BTTOLD"\ndecimals = 6\n')
    s = load_settings(str(f), env={"TRONRISK_CLICKHOUSE_FLUSH_ROWS": "2000", "TRONRISK_ANALYTICS_RULES": "a.yaml,b"},
                      overrides={"pipeline.workers": 3, "clickhouse.dsn": None})
    assert s.clickhouse.flush_rows == 2000 and s.pipeline.workers == 3 and s.analytics.shards == 8
    assert s.analytics.model == str((tmp_path / "m" / "iforest").resolve())  # relative to the file
    assert s.analytics.rules == ("a.yaml", "b")
    assert s.token_registry().trc10("1002000").symbol == "BTTOLD"
    assert s.source == f"defaults < {f} < environment < command line"


@pytest.mark.parametrize("text,message", [
    ("[clickhouse]\nflushrows = 5\n", "clickhouse.flushrows .*: unknown setting; known: dsn, flush_rows"),
    ("[pipeline]\nworkers = \"two\"\n", "pipeline.workers .*: expected int, got 'two'"),
    ("[pipeline]\nworkers = 0\n", "pipeline.workers: must be > 0"),
    ("[nope]\nx = 1\n", r"\[nope\] .*: unknown section"),
    ("[clickhouse]\ndsn = \"mysql://h\"\n", "unknown scheme 'mysql'"),
    ("[analytics]\nanomaly_threshold = 150.0\n", "analytics.anomaly_threshold: must be 0..100"),
    ("[tokens.TXXX]\nsymbol = \"X\"\ndecimals = 6\n", "tokens.TXXX: "),
    ("[tokens.\"1002000\"]\nsymbol = \"X\"\n", "tokens.1002000: missing field 'decimals'"),
    ("[clickhouse\n", "risk.toml: "),
])
def test_file_errors_name_the_setting(tmp_path, text, message):
    f = tmp_path / "risk.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(str(f), env={})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("env,message", [
    ({"TRONRISK_PIPELINE_WORKERZ": "1"}, "pipeline.workerz .*environment.*unknown setting"),
    ({"TRONRISK_CLICKHOUS_DSN": "chdb://x"}, "did you mean TRONRISK_CLICKHOUSE_DSN"),
    ({"TRONRISK_ANALYTICS_ENABLED": "maybe"}, "analytics.enabled .*expected bool"),
])
def test_environment_errors_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env)


def test_other_tronrisk_variables_are_not_settings():
    env = {"TRONRISK_WEBHOOK_SECRET": "whsec_x", "TRONRISK_CH_HOST": "ch", "TRONRISK_LOG_LEVEL": "INFO"}
    assert load_settings(env=env).clickhouse.dsn == "chdb://./data/chdb"


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml: config file not found"):
        load_settings(str(tmp_path / "nope.toml"), env={})


def test_secrets_stay_out_of_repr():
    s = load_settings(env={"TRONRISK_NODE_API_KEY": "k-123-secret"})
    assert s.node.api_key == "k-123-secret" and "k-123-secret" not in repr(s)


def test_first_seen_horizon_reaches_the_windows_and_may_not_be_shorter_than_the_long_window():
    from pipeline.assemble import window_config

    s = load_settings(env={"TRONRISK_ANALYTICS_FIRST_SEEN_HORIZON_S": "7200"})
    assert window_config(s.analytics).horizon_ms == 7_200_000
    with pytest.raises(ConfigError, match="analytics.first_seen_horizon_s: must be >= analytics.long_window_s"):
        load_settings(env={"TRONRISK_ANALYTICS_FIRST_SEEN_HORIZON_S": "60"})


def test_first_seen_capacity_reaches_the_windows_split_across_shards():
    from pipeline.assemble import window_config

    s = load_settings(env={"TRONRISK_ANALYTICS_FIRST_SEEN_CAPACITY": "1000", "TRONRISK_ANALYTICS_SHARDS": "8"})
    config = window_config(s.analytics)
    assert config.first_seen_capacity == 1000 and config.shard_first_seen_capacity == 125
    with pytest.raises(ConfigError, match="analytics.first_seen_capacity"):
        load_settings(env={"TRONRISK_ANALYTICS_FIRST_SEEN_CAPACITY": "0"})
