-- 001: the core tables. Every table deduplicates on a deterministic key (ReplacingMergeTree),
-- so replays and at-least-once restarts converge to one row per id; read with FINAL for exact
-- counts. non_replicated_deduplication_window makes a retried identical insert (same
-- insert_deduplication_token) a no-op immediately rather than at the next merge.

CREATE TABLE IF NOT EXISTS {db}.blocks (
    number UInt64,
    block_id String,
    parent_hash String,
    ts DateTime64(3, 'UTC'),
    witness String,
    tx_count UInt32,
    source LowCardinality(String),
    orphaned UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree
ORDER BY (number, block_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.transfers (
    id String,
    kind LowCardinality(String),
    tx_id String,
    idx UInt16,
    block_number UInt64,
    ts DateTime64(3, 'UTC'),
    from_address String,
    to_address String,
    caller String,
    token LowCardinality(String),
    symbol LowCardinality(String),
    decimals UInt8,
    amount_raw UInt256,
    amount Float64,
    amount_usd Float64,
    success Bool,
    result LowCardinality(String),
    contract_type LowCardinality(String),
    method LowCardinality(String),
    extra String,
    source LowCardinality(String),
    INDEX idx_from from_address TYPE bloom_filter GRANULARITY 4,
    INDEX idx_to to_address TYPE bloom_filter GRANULARITY 4,
    INDEX idx_tx tx_id TYPE bloom_filter GRANULARITY 4
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (block_number, id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.alerts (
    alert_id String,
    ts DateTime64(3, 'UTC'),
    detected_at DateTime64(3, 'UTC'),
    block_number UInt64,
    tx_id String,
    address String,
    rule_id LowCardinality(String),
    rule_version String,
    severity LowCardinality(String),
    risk_score Float32,
    status LowCardinality(String),
    source LowCardinality(String),
    title String,
    tags Array(LowCardinality(String)),
    details String,
    -- lifecycle order: pending (1) is replaced by confirmed or dropped (2), never the reverse
    status_rank UInt8 MATERIALIZED multiIf(status = 'pending', 1, 2),
    INDEX idx_address address TYPE bloom_filter GRANULARITY 4
) ENGINE = ReplacingMergeTree(status_rank)
ORDER BY alert_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.address_features (
    address String,
    ts DateTime64(3, 'UTC'),
    block_number UInt64,
    tx_in_count Float64,
    tx_out_count Float64,
    usd_in Float64,
    usd_out Float64,
    distinct_in Float64,
    distinct_out Float64,
    fan_in_10m Float64,
    fan_out_10m Float64,
    pass_through_ratio Float64,
    pass_through_delay_s Float64,
    age_s Float64,
    zero_value_in Float64,
    dust_in Float64,
    lookalike_count Float64,
    cycle_count Float64,
    watch_hops Float64,
    exposure_score Float64,
    approvals_unlimited Float64,
    failed_out Float64,
    permission_changes Float64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (address, ts)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.minute_stats (
    minute DateTime('UTC'),
    token LowCardinality(String),
    symbol LowCardinality(String),
    tx_count UInt64,
    failed_count UInt64,
    volume Float64,
    volume_usd Float64,
    distinct_senders UInt64,
    distinct_receivers UInt64
) ENGINE = ReplacingMergeTree
ORDER BY (minute, token)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.dead_letters (
    id String,
    source LowCardinality(String),
    position String,
    reason String,
    raw String,
    seen_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.checkpoints (
    source String,
    block_number UInt64,
    block_id String,
    ts DateTime64(3, 'UTC'),
    committed_at DateTime64(3, 'UTC')
-- the highest block wins: a replay of older input never moves a checkpoint backwards
) ENGINE = ReplacingMergeTree(block_number)
ORDER BY source;
