-- Least-privilege ClickHouse users for tisync with SQL-driven access control, for current
-- ClickHouse releases (25.8 and newer). users.d/tisync.xml beside this file defines the same users
-- in a server configuration file instead: use one of the two, because a user defined in both places
-- conflicts.
--
-- Run it once as a user with access management, replacing each placeholder with the SHA-256 hex
-- of the password:
--   PASSWORD=$(openssl rand -base64 32 | tr -dc A-Za-z0-9); echo "$PASSWORD"; printf '%s' "$PASSWORD" | sha256sum | cut -d' ' -f1
--   clickhouse-client --multiquery < rbac.sql
-- On a cluster, add ON CLUSTER <name> after each entity name, or run it on every server unless
-- the users are kept in replicated access storage.
--
-- tisync runs exactly these statements: CREATE DATABASE IF NOT EXISTS, CREATE TABLE IF NOT
-- EXISTS, CREATE VIEW IF NOT EXISTS, INSERT (events and the migration bookkeeping tables
-- schema_migrations and schema_migrations_lock) and SELECT (now(), version(), system.tables, the
-- bookkeeping tables). It drops, truncates, alters and deletes nothing. When
-- clickhouse.cluster.name is set, migrations run ON CLUSTER, which also needs
-- GRANT CLUSTER ON *.* TO tisync_writer. deploy/deploytest fails until this file and
-- users.d/tisync.xml grant what the migrations run.

-- The sink and `tisync migrate`.
CREATE ROLE IF NOT EXISTS tisync_writer;
GRANT CREATE DATABASE, CREATE TABLE, CREATE VIEW, INSERT, SELECT ON tisync.* TO tisync_writer;

-- Analysts and dashboards.
CREATE ROLE IF NOT EXISTS tisync_analyst;
GRANT SELECT ON tisync.* TO tisync_analyst;

-- Settings of the sink: bounded memory, synchronous inserts (it batches itself), and deduplication
-- of a retried block on replicated tables.
CREATE SETTINGS PROFILE IF NOT EXISTS tisync
    SETTINGS max_memory_usage = 4000000000,
             max_execution_time = 600,
             async_insert = 0,
             insert_deduplicate = 1;

-- Settings of analysts: read-only. readonly = 2 lets clients such as Grafana change query settings
-- within the bounds below, but no data and no schema.
CREATE SETTINGS PROFILE IF NOT EXISTS tisync_reader
    SETTINGS readonly = 2 CONST,
             max_memory_usage = 8000000000 MAX 16000000000,
             max_execution_time = 300 MAX 1800,
             max_result_rows = 10000000,
             result_overflow_mode = 'throw';

-- NOTE: HOST ANY lets every address connect. Narrow it to the hosts or the pod network that runs
-- tisync, for example HOST IP '10.0.0.0/8'.
CREATE USER IF NOT EXISTS tisync
    IDENTIFIED WITH sha256_hash BY 'REPLACE_WITH_SHA256_HEX_OF_THE_TISYNC_PASSWORD'
    HOST ANY
    SETTINGS PROFILE 'tisync';
GRANT tisync_writer TO tisync;
ALTER USER tisync DEFAULT ROLE tisync_writer;

CREATE USER IF NOT EXISTS tisync_reader
    IDENTIFIED WITH sha256_hash BY 'REPLACE_WITH_SHA256_HEX_OF_THE_READER_PASSWORD'
    HOST ANY
    DEFAULT DATABASE tisync
    SETTINGS PROFILE 'tisync_reader';
GRANT tisync_analyst TO tisync_reader;
ALTER USER tisync_reader DEFAULT ROLE tisync_analyst;
