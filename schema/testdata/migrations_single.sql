-- bootstrap
CREATE DATABASE IF NOT EXISTS tisync;

CREATE TABLE IF NOT EXISTS tisync.schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version;

CREATE TABLE IF NOT EXISTS tisync.schema_migrations_lock
(
    owner String,
    lease_until DateTime,
    released UInt8,
    updated_at UInt64
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY owner;

-- 0001_entity_tables.sql
CREATE TABLE IF NOT EXISTS tisync.tasks
(
    organization_id String,
    task_id String,
    version UInt64,
    revision UInt64,
    is_deleted UInt8,
    op LowCardinality(String),
    event_id String,
    content_hash String,
    observed_at DateTime,
    title String,
    created_at DateTime,
    favorite UInt8,
    folder String,
    labels Array(String),
    tag_keys Array(String),
    tag_values Array(String),
    lang LowCardinality(String),
    access_method LowCardinality(String),
    active UInt8,
    active_after Nullable(DateTime),
    active_before Nullable(DateTime),
    steps Nested(
        id String,
        title String,
        active UInt8,
        active_after Nullable(DateTime),
        active_before Nullable(DateTime),
        attempt_limit Int64,
        test_id String,
        test_organization_id String,
        test_source String,
        webcam_recording String,
        screen_recording String,
        fullscreen UInt8,
        post_ai_proctoring UInt8,
        practice_mode UInt8
    ),
    program_uuids Array(String),
    program_names Array(String),
    stage_uuids Array(String),
    stage_names Array(String),
    email_template_names Array(String),
    email_template_subjects Array(String),
    private_chat_enabled UInt8,
    raw String,
    inserted_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (organization_id, task_id);

CREATE TABLE IF NOT EXISTS tisync.tickets
(
    organization_id String,
    task_id String,
    ticket_id String,
    version UInt64,
    revision UInt64,
    is_deleted UInt8,
    op LowCardinality(String),
    event_id String,
    content_hash String,
    observed_at DateTime,
    kind LowCardinality(String),
    logged_in UInt8,
    fullname Nullable(String),
    email Nullable(String),
    invitation_code Nullable(String),
    direct_access_url Nullable(String),
    source LowCardinality(String),
    active UInt8,
    active_after Nullable(DateTime),
    active_before Nullable(DateTime),
    group_name String,
    labels Array(String),
    tag_keys Array(String),
    tag_values Array(String),
    rating Nullable(UInt8),
    stage Nullable(String),
    raw String,
    inserted_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (organization_id, task_id, ticket_id);

CREATE TABLE IF NOT EXISTS tisync.test_sessions
(
    organization_id String,
    task_id String,
    test_session_id String,
    version UInt64,
    revision UInt64,
    is_deleted UInt8,
    op LowCardinality(String),
    event_id String,
    content_hash String,
    observed_at DateTime,
    step_id String,
    ticket_id String,
    status LowCardinality(String),
    ignored UInt8,
    candidate_id String,
    candidate_kind LowCardinality(String),
    folder String,
    group_name String,
    labels Array(String),
    tag_keys Array(String),
    tag_values Array(String),
    has_result UInt8,
    completed_at Nullable(DateTime),
    points_achieved Nullable(Float64),
    max_achievable_points Nullable(Float64),
    achievement_ratio Nullable(Float64),
    no_of_questions Nullable(UInt32),
    result_sections String,
    result_dimensions String,
    result_effects String,
    raw String,
    inserted_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (organization_id, task_id, test_session_id);

-- 0002_change_events.sql
CREATE TABLE IF NOT EXISTS tisync.change_events
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
ENGINE = ReplacingMergeTree(version)
ORDER BY (organization_id, task_id, entity, entity_id, event_id);

-- 0003_current_views.sql
CREATE VIEW IF NOT EXISTS tisync.tasks_current AS
SELECT * FROM tisync.tasks FINAL WHERE is_deleted = 0;

CREATE VIEW IF NOT EXISTS tisync.tickets_current AS
SELECT * FROM tisync.tickets FINAL WHERE is_deleted = 0;

CREATE VIEW IF NOT EXISTS tisync.test_sessions_current AS
SELECT * FROM tisync.test_sessions FINAL WHERE is_deleted = 0;

-- 0004_analytics_views.sql
CREATE VIEW IF NOT EXISTS tisync.task_funnel AS
SELECT
    organization_id,
    task_id,
    count() AS invited,
    countIf(ticket_logged_in = 1 OR sessions > 0) AS logged_in,
    countIf(sessions > 0) AS started,
    countIf(completed_steps > 0 AND completed_steps >= step_count) AS completed
FROM
(
    SELECT organization_id, task_id, ticket_id, ticket_logged_in, sessions, completed_steps
    FROM
    (
        SELECT organization_id, task_id, ticket_id, logged_in AS ticket_logged_in
        FROM tisync.tickets_current
    )
    ANY LEFT JOIN
    (
        SELECT
            organization_id,
            task_id,
            ticket_id,
            count() AS sessions,
            uniqExactIf(step_id, status = 'COMPLETE' AND ignored = 0) AS completed_steps
        FROM tisync.test_sessions_current
        GROUP BY organization_id, task_id, ticket_id
    ) USING (organization_id, task_id, ticket_id)
)
ANY LEFT JOIN
(
    SELECT organization_id, task_id, length(steps.id) AS step_count
    FROM tisync.tasks_current
) USING (organization_id, task_id)
GROUP BY organization_id, task_id;

CREATE VIEW IF NOT EXISTS tisync.step_results AS
SELECT
    organization_id,
    task_id,
    step_id,
    ticket_id,
    count() AS attempts,
    max(assumeNotNull(achievement_ratio)) AS best_ratio,
    max(assumeNotNull(completed_at)) AS last_completed_at
FROM tisync.test_sessions_current
WHERE status = 'COMPLETE' AND ignored = 0 AND has_result = 1 AND achievement_ratio IS NOT NULL
GROUP BY organization_id, task_id, step_id, ticket_id;

CREATE VIEW IF NOT EXISTS tisync.score_distribution AS
SELECT
    organization_id,
    task_id,
    step_id,
    toUInt8(least(greatest(floor(best_ratio * 10), 0), 9)) AS bucket,
    bucket / 10 AS ratio_from,
    (bucket + 1) / 10 AS ratio_to,
    count() AS candidates
FROM tisync.step_results
GROUP BY organization_id, task_id, step_id, bucket;

CREATE VIEW IF NOT EXISTS tisync.step_pass_rates AS
SELECT
    organization_id,
    task_id,
    step_id,
    count() AS candidates,
    countIf(best_ratio >= 0.5) AS passed,
    passed / candidates AS pass_rate,
    countIf(best_ratio >= 0.6) AS passed_60,
    countIf(best_ratio >= 0.7) AS passed_70,
    countIf(best_ratio >= 0.8) AS passed_80,
    avg(best_ratio) AS mean_ratio,
    quantile(0.5)(best_ratio) AS median_ratio
FROM tisync.step_results
GROUP BY organization_id, task_id, step_id;

CREATE VIEW IF NOT EXISTS tisync.task_pass_rates AS
SELECT
    organization_id,
    task_id,
    count() AS candidates,
    countIf(worst_step_ratio >= 0.5) AS passed,
    passed / candidates AS pass_rate
FROM
(
    SELECT organization_id, task_id, ticket_id, min(best_ratio) AS worst_step_ratio
    FROM tisync.step_results
    GROUP BY organization_id, task_id, ticket_id
)
GROUP BY organization_id, task_id;

CREATE VIEW IF NOT EXISTS tisync.test_session_durations AS
SELECT
    organization_id,
    task_id,
    entity_id AS test_session_id,
    any(step_id) AS step_id,
    any(ticket_id) AS ticket_id,
    minIf(observed_at, status_after = 'STARTED') AS first_started_at,
    minIf(observed_at, status_after = 'COMPLETE') AS first_completed_at,
    dateDiff('second', first_started_at, first_completed_at) AS seconds_to_complete
FROM tisync.change_events FINAL
WHERE entity = 'test_session'
GROUP BY organization_id, task_id, entity_id
HAVING countIf(status_after = 'STARTED') > 0
    AND countIf(status_after = 'COMPLETE') > 0
    AND first_completed_at >= first_started_at;

