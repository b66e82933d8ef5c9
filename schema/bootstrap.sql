-- Bookkeeping of the migration runner, created before any numbered migration.
--
-- schema_migrations records each applied migration. Two runners that race may both record one
-- version; ReplacingMergeTree and reads through FINAL collapse the copies.
--
-- schema_migrations_lock holds leases of the runner's lock. A runner appends a row for itself,
-- reads every live lease and holds the lock only when its own row is the only one; otherwise it
-- releases its row (released = 1, a newer updated_at) and retries later.

CREATE DATABASE IF NOT EXISTS {{.Database}}{{.OnCluster}};

CREATE TABLE IF NOT EXISTS {{.Database}}.schema_migrations{{.OnCluster}}
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime
)
ENGINE = {{engine "schema_migrations" "ReplacingMergeTree" "applied_at"}}
ORDER BY version;

CREATE TABLE IF NOT EXISTS {{.Database}}.schema_migrations_lock{{.OnCluster}}
(
    owner String,
    lease_until DateTime,
    released UInt8,
    updated_at UInt64
)
ENGINE = {{engine "schema_migrations_lock" "ReplacingMergeTree" "updated_at"}}
ORDER BY owner;
