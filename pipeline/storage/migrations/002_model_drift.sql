-- 002: feature drift of the anomaly model, per event-time window and feature (population
-- stability index against the training distribution), so a dashboard can say when to retrain.

CREATE TABLE IF NOT EXISTS {db}.model_drift (
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    model_version LowCardinality(String),
    feature LowCardinality(String),
    psi Float64,
    n UInt64
) ENGINE = ReplacingMergeTree
ORDER BY (model_version, window_start, feature)
SETTINGS non_replicated_deduplication_window = 1000;
