-- 005: the compliance audit trail (pipeline/audit).
-- audit_log is append-only and hash-chained: plain MergeTree (never Replacing), so a duplicated,
-- inserted or removed row stays visible to `audit verify` instead of being merged away. Replays are
-- made idempotent by the appender (deterministic record_id, checked before chaining), not by the
-- engine. `address` is the subject's TRON address where there is one (export --address filter).

CREATE TABLE IF NOT EXISTS {db}.audit_log (
    seq UInt64,
    record_id String,
    kind LowCardinality(String),
    subject String,
    address String,
    ts DateTime64(3, 'UTC'),
    actor String,
    payload String,
    prev_hash String,
    hash String,
    INDEX idx_record record_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_subject subject TYPE bloom_filter GRANULARITY 4,
    INDEX idx_address address TYPE bloom_filter GRANULARITY 4
) ENGINE = MergeTree
ORDER BY seq
SETTINGS non_replicated_deduplication_window = 1000;

-- Chain heads recorded periodically: (seq, hash) anchors that a rewritten tail cannot match.
CREATE TABLE IF NOT EXISTS {db}.audit_heads (
    seq UInt64,
    hash String,
    recorded_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY seq
SETTINGS non_replicated_deduplication_window = 1000;

-- Analyst actions on alerts: every action kept (history), the latest per alert wins (argMax on at).
CREATE TABLE IF NOT EXISTS {db}.dispositions (
    alert_id String,
    at DateTime64(3, 'UTC'),
    action LowCardinality(String),
    disposition LowCardinality(String),
    analyst String,
    note String,
    record_id String
) ENGINE = ReplacingMergeTree
ORDER BY (alert_id, at, record_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- Evidence bundle per alert, written at detection time so it outlives the rolling window.
CREATE TABLE IF NOT EXISTS {db}.evidence (
    alert_id String,
    ts DateTime64(3, 'UTC'),
    address String,
    rule_id LowCardinality(String),
    rule_version String,
    created_at DateTime64(3, 'UTC'),
    triggers String,
    definition String,
    features String,
    neighbourhood String,
    neighbourhood_rows UInt32
) ENGINE = ReplacingMergeTree
ORDER BY alert_id
SETTINGS non_replicated_deduplication_window = 1000;
