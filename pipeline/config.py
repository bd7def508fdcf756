"""One settings object, validated once at start: defaults < TOML file < environment < flags.

The TOML file (``--config FILE``, or ``tronrisk.toml`` in the working directory when present) has
sections matching :class:`Settings`; environment variables are ``TRONRISK_<SECTION>_<KEY>``
(e.g. ``TRONRISK_CLICKHOUSE_DSN``). An unknown key or a wrong type is one clear error naming the
setting and where it came from. Other ``TRONRISK_*`` variables (secrets named in the ticket routing
file, the dashboards' compose variables) are not settings and are left alone, unless their section
looks like a misspelt settings section. Nothing else in the package reads the environment.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.storage.clickhouse import DEFAULT_DSN, parse_dsn

ENV_PREFIX = "TRONRISK_"


@dataclass(frozen=True)
class ClickHouseSettings:
    dsn: str = field(default=DEFAULT_DSN, repr=False)  # may hold a password: never in a repr
    flush_rows: int = 50_000  # rows buffered before an insert
    max_delay_ms: int = 500  # longest a row waits in the buffer (fast replays: bigger batches)
    live_max_delay_ms: int = 100  # the same at live or paced speed, where latency matters
    password_file: str = ""  # file holding the DSN's password (keeps it out of `ps`); replaces one in the DSN


@dataclass(frozen=True)
class PipelineSettings:
    workers: int = 1  # Bytewax workers in this process
    # Blocks per source read when replaying as fast as possible. One: a parsed mainnet block is a
    # few MB of Python objects; decoded at once, it is still in cache and its memory is reused by
    # the next parse. Eight blocks per read made decode+store 30% slower (bench/bench_ingest.py).
    batch_blocks: int = 1
    epoch_interval_s: float = 10.0  # how often Bytewax snapshots when recovery is on
    recovery_dir: str = ""  # Bytewax recovery database; "" = no crash recovery


REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class AnalyticsSettings:
    enabled: bool = True  # graph, features, rules and anomaly scoring; off = decode and store only
    rules: tuple[str, ...] = (str(REPO / "rules"),)  # rule files or directories
    watchlists: str = str(REPO / "rules" / "lists")  # directory of watchlist files
    allowlists: str = str(REPO / "rules" / "allow")  # allow (suppression) lists; "" = none
    reload_interval_s: float = 5.0  # how often rule and watchlist files are checked for edits; 0 = never
    model: str = str(REPO / "models" / "iforest")  # model directory or card; "" = no anomaly scoring
    model_sha256: str = ""  # the model's digest (printed by `train`), pinned here; "" = not checked
    max_yaml_bytes: int = 1_048_576  # a larger rule or ticket-routing file is refused unread
    anomaly_threshold: float = -1.0  # calibrated 0-100; -1 = the model card's threshold
    supervised_model: str = ""  # supervised scorer directory (train-gbm); "" = off; alerts supervised.gbm
    shards: int = 32  # address shards: fixed, so results do not depend on the worker count
    long_window_s: int = 3600
    short_window_s: int = 600
    lateness_s: int = 30
    # How long an address that stops transacting keeps its first-seen time (``age_s`` is capped
    # at this), in tables allocated once at start: ``first_seen_capacity`` addresses in all, 16
    # bytes each. Size it for the distinct addresses seen within the horizon (a day of mainnet:
    # 2-3 million); beyond it the least recently seen are forgotten early (stats: evicted).
    first_seen_horizon_s: int = 86_400
    first_seen_capacity: int = 4_194_304
    min_score_rows: int = 2000  # anomaly micro-batch size when replaying fast
    max_wait_ms: int = 200  # longest complete rows wait for a bigger anomaly batch (fast replays)
    live_max_wait_ms: int = 20  # the same at live or paced speed: blocks come one at a time
    write_features: bool = True  # address_features snapshots (latest per address per block)
    anomaly_cooldown_s: int = 3600  # one anomaly alert per detector and address per window
    structures: bool = True  # structural detectors (fan-in/out, chains, cycles, drains: operators/structures.py)
    structure_window_s: int = 7200  # how far back a structure may reach
    alert_budget_per_1k: float = 2.0  # alert rows per 1,000 transactions, highest risk first; 0 = no budget
    correlation_window_s: int = 3600  # alerts about one subject within this are one alert; 0 = off


@dataclass(frozen=True)
class TicketSettings:
    enabled: bool = False  # queue alerts that match the routing file and deliver them (docs/tickets.md)
    routing: str = str(REPO / "rules" / "tickets" / "routing.yaml")
    drain_s: float = 30.0  # at the end of a replay, wait up to this long for open deliveries
    allowed_hosts: tuple[str, ...] = ()  # destination hosts (exact, or ".example.com": subdomains); () = any
    secrets_dir: str = ""  # {file: ...} secrets must lie under it; "" = the routing file's directory


@dataclass(frozen=True)
class NodeSettings:
    api_key: str = field(default="", repr=False)  # TRON-PRO-API-KEY for TronGrid; never logged
    api_key_file: str = ""  # file holding the key (keeps it out of `ps` and of the config file)
    max_answer_bytes: int = 64 * 2**20  # size cap on every node answer, read streamed
    pending_max_message_bytes: int = 4 * 2**20  # largest pending-feed message (websockets' max_size)
    pending_queue_messages: int = 100_000  # pending messages buffered between the feed and the flow,
    pending_queue_bytes: int = 64 * 2**20  # and their bytes; a message that finds no room is dead-lettered


@dataclass(frozen=True)
class AuditSettings:
    # Ed25519 key that signs the audit chain's heads, kept outside ClickHouse so a database writer
    # cannot rewrite history unnoticed (pipeline/audit/keys.py). TRONRISK_AUDIT_SIGNING_KEY: the
    # private key itself (PEM or base64 of its 32 bytes); never logged.
    signing_key: str = field(default="", repr=False)
    signing_key_file: str = ""  # "" = <data dir>/audit/signing.key, generated on first use (mode 0600)
    verify_key_file: str = ""  # public key for `audit verify`; "" = the one of the signing key
    heads_dir: str = ""  # signed head files, outside the database; "" = <data dir>/audit/heads
    max_unsigned_tail: int = 0  # records after the last signed head that `audit verify` accepts

    def __post_init__(self) -> None:
        if self.max_unsigned_tail < 0:
            raise ConfigError(f"audit.max_unsigned_tail: must be >= 0, got {self.max_unsigned_tail}")


@dataclass(frozen=True)
class PriceSettings:
    trx_usd: float = 0.25  # USD value of one TRX, for USD volumes across tokens


@dataclass(frozen=True)
class LimitSettings:
    """Bounds on untrusted replay input; each limit hit is a dead letter naming the file and line
    (defaults mirror :class:`pipeline.sources.files.ReadLimits`)."""

    max_line_bytes: int = 8 << 20  # one JSONL line (a TRON block is at most ~2 MB)
    max_document_bytes: int = 128 << 20  # one .json/.json.gz document, decompressed
    max_stream_bytes: int = 64 << 30  # one gzipped JSONL file, decompressed (gzip bombs)


@dataclass(frozen=True)
class Settings:
    clickhouse: ClickHouseSettings = field(default_factory=ClickHouseSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    prices: PriceSettings = field(default_factory=PriceSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    tickets: TicketSettings = field(default_factory=TicketSettings)
    node: NodeSettings = field(default_factory=NodeSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    tokens: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # extra token registry entries
    source: str = "defaults"  # where the settings came from, for messages

    def validate(self) -> Settings:
        parse_dsn(self.clickhouse.dsn)
        _positive("clickhouse.flush_rows", self.clickhouse.flush_rows)
        _positive("clickhouse.max_delay_ms", self.clickhouse.max_delay_ms)
        _positive("pipeline.workers", self.pipeline.workers)
        _positive("pipeline.batch_blocks", self.pipeline.batch_blocks)
        _positive("pipeline.epoch_interval_s", self.pipeline.epoch_interval_s)
        a = self.analytics
        for name in ("shards", "long_window_s", "short_window_s", "min_score_rows", "max_wait_ms",
                     "first_seen_capacity", "max_yaml_bytes"):
            _positive(f"analytics.{name}", getattr(a, name))
        if a.first_seen_horizon_s < a.long_window_s:
            raise ConfigError(f"analytics.first_seen_horizon_s: must be >= analytics.long_window_s "
                              f"({a.long_window_s}), got {a.first_seen_horizon_s}")
        if a.reload_interval_s < 0:
            raise ConfigError(f"analytics.reload_interval_s: must be >= 0 (0 = no hot reload), got "
                              f"{a.reload_interval_s}")
        if a.model_sha256 and (len(a.model_sha256) != 64 or set(a.model_sha256) - set("0123456789abcdef")):
            raise ConfigError(f"analytics.model_sha256: expected 64 lower-case hex digits, "
                              f"got {a.model_sha256[:80]!r}")
        if not (a.anomaly_threshold == -1.0 or 0.0 <= a.anomaly_threshold <= 100.0):
            raise ConfigError(f"analytics.anomaly_threshold: must be 0..100 (or -1), got {a.anomaly_threshold}")
        for name in ("max_line_bytes", "max_document_bytes", "max_stream_bytes"):
            _positive(f"limits.{name}", getattr(self.limits, name))
        if self.prices.trx_usd < 0:
            raise ConfigError(f"prices.trx_usd: must be >= 0, got {self.prices.trx_usd}")
        from pipeline.tron.tokens import TokenRegistry  # validates token entries

        TokenRegistry.build(self.tokens, self.prices.trx_usd)
        return self

    def token_registry(self):
        from pipeline.tron.tokens import TokenRegistry

        return TokenRegistry.build(self.tokens, self.prices.trx_usd)


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{name}: must be > 0, got {value}")


_SECTIONS = {f.name: f for f in dataclasses.fields(Settings) if dataclasses.is_dataclass(f.default_factory)}  # type: ignore[arg-type]


def _coerce(name: str, value: Any, target: type, origin: str) -> Any:
    try:
        if target is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if target is tuple:
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise ValueError(value)
        if target is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        if target in (int, float) and isinstance(value, bool):
            raise ValueError(value)
        return target(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} ({origin}): expected {target.__name__}, got {value!r}") from None


def _apply(section_name: str, current: Any, values: Mapping[str, Any], origin: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(current)}
    changes = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{section_name}.{key} ({origin}): unknown setting; known: {', '.join(sorted(known))}")
        target = type(getattr(current, key))
        changes[key] = _coerce(f"{section_name}.{key}", value, target, origin)
        if (target is str and key in ("watchlists", "allowlists", "model", "routing", "password_file",
                                      "api_key_file", "secrets_dir") and changes[key] and origin != "command line"):
            changes[key] = str(_relative_to(origin, changes[key]))
        audit_path = section_name == "audit" and key.endswith(("_file", "_dir"))
        if audit_path and changes[key] and origin != "command line":
            changes[key] = str(_relative_to(origin, changes[key]))
    return dataclasses.replace(current, **changes)


def _relative_to(origin: str, value: str) -> Path:
    """Paths in a config file are relative to the file; elsewhere to the working directory."""
    base = Path(origin).parent if origin.endswith(".toml") else Path.cwd()
    return (base / value).resolve()


def load_settings(config_file: str | None = None, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build and validate the settings; ``overrides`` are dotted names from command-line flags."""
    settings = Settings()
    env = os.environ if env is None else env
    path = Path(config_file) if config_file else Path("tronrisk.toml")
    origins = ["defaults"]
    if config_file or path.exists():
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: {err}") from None
        settings = _merge(settings, doc, str(path))
        origins.append(str(path))
    env_doc: dict[str, dict[str, str]] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        rest = key[len(ENV_PREFIX):].lower()
        section, _, name = rest.partition("_")
        if section not in _SECTIONS:
            # Not a setting (routing-file secrets, the dashboards' compose variables, the log level)
            # unless it looks like a misspelt section, which would otherwise be silently ignored.
            close = difflib.get_close_matches(section, _SECTIONS, n=1, cutoff=0.8)
            if close:
                raise ConfigError(f"{key} (environment): unknown settings section {section!r}; "
                                  f"did you mean {ENV_PREFIX}{close[0].upper()}_{name.upper()}?")
            continue
        if not name:
            raise ConfigError(f"{key} (environment): use {ENV_PREFIX}{section.upper()}_<KEY>")
        env_doc.setdefault(section, {})[name] = value
    if env_doc:
        settings = _merge(settings, env_doc, "environment")
        origins.append("environment")
    flag_doc: dict[str, dict[str, Any]] = {}
    for dotted, value in (overrides or {}).items():
        if value is not None:
            section, _, name = dotted.partition(".")
            flag_doc.setdefault(section, {})[name] = value
    if flag_doc:
        settings = _merge(settings, flag_doc, "command line")
        origins.append("command line")
    dsn_flag = (overrides or {}).get("clickhouse.dsn")
    if isinstance(dsn_flag, str) and parse_dsn(dsn_flag).password:
        from pipeline.redact import warn_command_line

        warn_command_line("a password in --clickhouse",
                          f"{ENV_PREFIX}CLICKHOUSE_DSN or [clickhouse] password_file")
    settings = _with_password_file(settings)
    return dataclasses.replace(settings, source=" < ".join(origins)).validate()


def _with_password_file(settings: Settings) -> Settings:
    """``clickhouse.password_file`` set: its content becomes the password of an http(s) DSN (an
    embedded ``chdb://`` DSN has none, so the setting is ignored there)."""
    path = settings.clickhouse.password_file
    dsn = parse_dsn(settings.clickhouse.dsn)
    if not path or dsn.embedded:
        return settings
    from urllib.parse import quote

    from pipeline.redact import read_secret_file, register_secret

    password = read_secret_file(path, "clickhouse.password_file")
    register_secret(quote(password, safe=""))  # the form the DSN text holds
    host = f"[{dsn.host}]" if ":" in dsn.host else dsn.host
    user = f"{quote(dsn.username, safe='')}:{quote(password, safe='')}"
    full = f"{dsn.scheme}://{user}@{host}:{dsn.port}/{dsn.database}"
    return dataclasses.replace(settings, clickhouse=dataclasses.replace(settings.clickhouse, dsn=full))


def _merge(settings: Settings, doc: Mapping[str, Any], origin: str) -> Settings:
    changes: dict[str, Any] = {}
    for section, values in doc.items():
        if section == "tokens":
            if not isinstance(values, Mapping):
                raise ConfigError(f"tokens ({origin}): expected a table of token entries")
            changes["tokens"] = {**settings.tokens, **values}
            continue
        if section not in _SECTIONS:
            raise ConfigError(f"[{section}] ({origin}): unknown section; known: "
                              f"{', '.join(sorted([*_SECTIONS, 'tokens']))}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{section}] ({origin}): expected a table")
        changes[section] = _apply(section, getattr(settings, section), values, origin)
    return dataclasses.replace(settings, **changes)
