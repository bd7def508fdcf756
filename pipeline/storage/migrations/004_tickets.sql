-- 004: ticket delivery. ticket_outbox holds one row per (destination, alert) to deliver; the
-- dataflow inserts it as 'pending' with version 0 in the same sink flush as the alert, and the
-- delivery worker replaces it with higher versions (sending, retry, delivered, dead, disabled),
-- so a replay's re-inserted 'pending' row never overrides a later state. tickets is the
-- append-only log of every delivery attempt and its outcome.

CREATE TABLE IF NOT EXISTS {db}.ticket_outbox (
    item_key String,
    destination LowCardinality(String),
    route LowCardinality(String),
    group_id String,
    alert_id String,
    ts DateTime64(3, 'UTC'),
    address String,
    severity LowCardinality(String),
    payload String,
    state LowCardinality(String),
    attempts UInt32,
    next_attempt_at DateTime64(3, 'UTC'),
    last_error String,
    external_id String,
    external_url String,
    updated_at DateTime64(3, 'UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY item_key
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.tickets (
    attempted_at DateTime64(3, 'UTC'),
    item_key String,
    destination LowCardinality(String),
    group_id String,
    alert_id String,
    action LowCardinality(String),
    attempt UInt32,
    outcome LowCardinality(String),
    http_status UInt16,
    error String,
    external_id String,
    external_url String,
    duration_ms UInt32
) ENGINE = MergeTree
PARTITION BY toYYYYMM(attempted_at)
ORDER BY (destination, group_id, attempted_at);
