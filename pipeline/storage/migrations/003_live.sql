-- 003: live mode. Source health for dashboards, lead times of pending transactions, and the
-- blocks a reorg orphaned (with the new branch's transaction ids at the same height, so queries
-- and audits can tell what the new branch no longer holds).

CREATE TABLE IF NOT EXISTS {db}.source_health (
    source LowCardinality(String),
    at DateTime64(3, 'UTC'),
    head Int64,
    target Int64,
    last_height Int64,
    lag_blocks Int64,
    lag_s Float64,
    blocks_per_s Float64,
    items_total UInt64,
    errors_total UInt64,
    reconnects_total UInt64,
    gaps_total UInt64,
    reorgs_total UInt64,
    connected Bool,
    last_error String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (source, at)
TTL toDateTime(at) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.pending_lead_times (
    tx_id String,
    seen_at DateTime64(3, 'UTC'),
    block_number UInt64,
    block_ts DateTime64(3, 'UTC'),
    confirmed_at DateTime64(3, 'UTC'),
    lead_ms Int64,
    alerts UInt32
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(block_ts)
ORDER BY tx_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.orphaned_blocks (
    number UInt64,
    block_id String,
    new_block_id String,
    kept_tx_ids Array(String),
    source LowCardinality(String),
    ancestor UInt64,
    detected_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY (number, block_id)
SETTINGS non_replicated_deduplication_window = 1000;
