-- Every change event, deduplicated by event id. The sorting key starts with organization and task,
-- so queries about one task read only its range, and ends with the event id, so a replayed or
-- redelivered event replaces its earlier copy when parts merge (read through FINAL for exact counts).
-- Every other key column is an input of the event id hash, so all copies of one event share the whole
-- key. The table is not partitioned by time because a change detected twice (after a crash) gets the
-- same id but a later observed_at, and copies in different partitions would never be merged.
-- status_before and status_after are the test session status of each image ('' for other entities
-- and for a missing image), typed so that views need no JSON parsing.

CREATE TABLE IF NOT EXISTS {{.Database}}.change_events{{.OnCluster}}
(
    organization_id String,
    task_id String,
    entity LowCardinality(String),
    entity_id String,
    event_id String,
    op LowCardinality(String),
    revision UInt64,
    version UInt64,
    observed_at DateTime,
    event_time DateTime,
    changed_fields Array(String),
    `before` String,
    `after` String,
    content_hash String,
    ticket_id String,
    step_id String,
    status_before LowCardinality(String),
    status_after LowCardinality(String),
    inserted_at DateTime DEFAULT now()
)
ENGINE = {{engine "change_events" "ReplacingMergeTree" "version"}}
ORDER BY (organization_id, task_id, entity, entity_id, event_id);
