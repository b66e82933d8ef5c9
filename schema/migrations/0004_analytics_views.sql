-- Analytics over the current state and the change history.
--
-- task_funnel: candidates of each task at each stage, counted over current (not deleted) tickets.
-- Each stage is a subset of the one before it:
--   invited    every ticket of the task;
--   logged_in  tickets with loggedIn = true or with any test session (a session implies a login);
--   started    tickets with at least one test session, whatever its status;
--   completed  tickets with a COMPLETE, not ignored session for as many distinct steps as the task
--              has; when the task row is missing or has no steps, one such session is enough.
-- Test sessions whose ticket has no current row are not counted.

CREATE VIEW IF NOT EXISTS {{.Database}}.task_funnel{{.OnCluster}} AS
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
        FROM {{.Database}}.tickets_current
    )
    ANY LEFT JOIN
    (
        SELECT
            organization_id,
            task_id,
            ticket_id,
            count() AS sessions,
            uniqExactIf(step_id, status = 'COMPLETE' AND ignored = 0) AS completed_steps
        FROM {{.Database}}.test_sessions_current
        GROUP BY organization_id, task_id, ticket_id
    ) USING (organization_id, task_id, ticket_id)
)
ANY LEFT JOIN
(
    SELECT organization_id, task_id, length(steps.id) AS step_count
    FROM {{.Database}}.tasks_current
) USING (organization_id, task_id)
GROUP BY organization_id, task_id;

-- step_results: the best attempt of each ticket at each step, the basis of the score and pass-rate
-- views. Only COMPLETE, not ignored sessions with a result count; a candidate with several attempts
-- (attemptLimit above 1) is represented by the highest achievementRatio.

CREATE VIEW IF NOT EXISTS {{.Database}}.step_results{{.OnCluster}} AS
SELECT
    organization_id,
    task_id,
    step_id,
    ticket_id,
    count() AS attempts,
    max(assumeNotNull(achievement_ratio)) AS best_ratio,
    max(assumeNotNull(completed_at)) AS last_completed_at
FROM {{.Database}}.test_sessions_current
WHERE status = 'COMPLETE' AND ignored = 0 AND has_result = 1 AND achievement_ratio IS NOT NULL
GROUP BY organization_id, task_id, step_id, ticket_id;

-- score_distribution: candidates per tenth of achievementRatio for each task step. Bucket 0 is
-- [0, 0.1), bucket 9 is [0.9, 1.0]; ratios outside 0 to 1 fall into bucket 0 or 9.

CREATE VIEW IF NOT EXISTS {{.Database}}.score_distribution{{.OnCluster}} AS
SELECT
    organization_id,
    task_id,
    step_id,
    toUInt8(least(greatest(floor(best_ratio * 10), 0), 9)) AS bucket,
    bucket / 10 AS ratio_from,
    (bucket + 1) / 10 AS ratio_to,
    count() AS candidates
FROM {{.Database}}.step_results
GROUP BY organization_id, task_id, step_id, bucket;

-- step_pass_rates: share of candidates whose best attempt at a step reaches a pass threshold.
-- TestInvite reports no pass flag, so the default threshold is achievementRatio >= 0.5 (passed,
-- pass_rate); passed_60, passed_70 and passed_80 count the 0.6, 0.7 and 0.8 thresholds. For any other
-- threshold, query step_results directly, for example:
--   SELECT task_id, step_id, countIf(best_ratio >= 0.65) / count() AS pass_rate
--   FROM step_results GROUP BY task_id, step_id

CREATE VIEW IF NOT EXISTS {{.Database}}.step_pass_rates{{.OnCluster}} AS
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
FROM {{.Database}}.step_results
GROUP BY organization_id, task_id, step_id;

-- task_pass_rates: a candidate passes a task when the best attempt at every step they completed
-- reaches achievementRatio >= 0.5; candidates count once they completed any step.

CREATE VIEW IF NOT EXISTS {{.Database}}.task_pass_rates{{.OnCluster}} AS
SELECT
    organization_id,
    task_id,
    count() AS candidates,
    countIf(worst_step_ratio >= 0.5) AS passed,
    passed / candidates AS pass_rate
FROM
(
    SELECT organization_id, task_id, ticket_id, min(best_ratio) AS worst_step_ratio
    FROM {{.Database}}.step_results
    GROUP BY organization_id, task_id, ticket_id
)
GROUP BY organization_id, task_id;

-- test_session_durations: seconds from the first observation of a session as STARTED to the first
-- observation of it as COMPLETE, from the change history. Observation times are scan times, so a
-- duration is accurate to the poll interval. Sessions first seen already COMPLETE (for example in an
-- initial snapshot) are left out because their start was never observed.

CREATE VIEW IF NOT EXISTS {{.Database}}.test_session_durations{{.OnCluster}} AS
SELECT
    organization_id,
    task_id,
    entity_id AS test_session_id,
    any(step_id) AS step_id,
    any(ticket_id) AS ticket_id,
    minIf(observed_at, status_after = 'STARTED') AS first_started_at,
    minIf(observed_at, status_after = 'COMPLETE') AS first_completed_at,
    dateDiff('second', first_started_at, first_completed_at) AS seconds_to_complete
FROM {{.Database}}.change_events FINAL
WHERE entity = 'test_session'
GROUP BY organization_id, task_id, entity_id
HAVING countIf(status_after = 'STARTED') > 0
    AND countIf(status_after = 'COMPLETE') > 0
    AND first_completed_at >= first_started_at;
