-- 006: alerts an allow list suppressed (rules/allow/, pipeline/allowlists.py). They are not alerts
-- and open no ticket, but each is kept with the list, reason and category that suppressed it, so
-- the lists' effect is visible (run summary, evaluation) and reviewable: what did we choose not to see?
-- Same deterministic alert_id as the alert would have had: replays deduplicate.

CREATE TABLE IF NOT EXISTS {db}.suppressed_alerts (
    alert_id String,
    ts DateTime64(3, 'UTC'),
    detected_at DateTime64(3, 'UTC'),
    block_number UInt64,
    tx_id String,
    address String,
    rule_id LowCardinality(String),
    rule_version String,
    severity LowCardinality(String),
    source LowCardinality(String),
    list_name LowCardinality(String),
    category LowCardinality(String),
    reason String,
    expires_at Nullable(DateTime64(3, 'UTC'))
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY alert_id
SETTINGS non_replicated_deduplication_window = 1000;
