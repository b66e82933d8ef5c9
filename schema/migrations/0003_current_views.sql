-- Current state of every record that still exists: the newest version per record (FINAL), without
-- deleted records. The filter runs after FINAL has picked the newest row, so a deleted record does
-- not reappear through an older version.

CREATE VIEW IF NOT EXISTS {{.Database}}.tasks_current{{.OnCluster}} AS
SELECT * FROM {{.Database}}.tasks FINAL WHERE is_deleted = 0;

CREATE VIEW IF NOT EXISTS {{.Database}}.tickets_current{{.OnCluster}} AS
SELECT * FROM {{.Database}}.tickets FINAL WHERE is_deleted = 0;

CREATE VIEW IF NOT EXISTS {{.Database}}.test_sessions_current{{.OnCluster}} AS
SELECT * FROM {{.Database}}.test_sessions FINAL WHERE is_deleted = 0;
