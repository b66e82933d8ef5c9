-- Current-state tables: one row per observed version of each TestInvite record. ReplacingMergeTree
-- keeps the row with the largest version per sorting key when parts merge, so replays and duplicate
-- deliveries collapse into one row; read through FINAL (the *_current views) for exact results before
-- merges have run. A deleted record keeps a last row with is_deleted = 1, whose typed columns come
-- from the record's image before the delete. raw is the normalized record as published.

CREATE TABLE IF NOT EXISTS {{.Database}}.tasks{{.OnCluster}}
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
ENGINE = {{engine "tasks" "ReplacingMergeTree" "version"}}
ORDER BY (organization_id, task_id);

CREATE TABLE IF NOT EXISTS {{.Database}}.tickets{{.OnCluster}}
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
ENGINE = {{engine "tickets" "ReplacingMergeTree" "version"}}
ORDER BY (organization_id, task_id, ticket_id);

CREATE TABLE IF NOT EXISTS {{.Database}}.test_sessions{{.OnCluster}}
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
ENGINE = {{engine "test_sessions" "ReplacingMergeTree" "version"}}
ORDER BY (organization_id, task_id, test_session_id);
