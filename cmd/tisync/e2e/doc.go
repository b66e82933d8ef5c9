// Package e2e tests tisync end to end, the way an operator runs it. The tisync binary runs as a child
// process with a YAML configuration and TISYNC_* variables, and its embedded NATS server keeps its
// store on disk. It polls a TestInvite simulator served by the test process, and its sink writes
// into a fresh database on a real ClickHouse server. The tests check the result from outside: the
// simulator's truth dump against the ClickHouse tables and views, the JetStream stream and consumer
// through the embedded server's listener, and /metrics and /readyz.
//
// The package contains only tests and benchmarks:
//
//   - TestChurnAndFaults: churn rounds under injected API faults; after every round the tables
//     catch up with the truth, and change_events keeps every state a poll could observe.
//   - TestCrashRecovery: the daemon is killed with SIGKILL at least ten times, during scans,
//     between a checkpoint's prepare and commit (while events are published) and during
//     ClickHouse inserts, and restarted each time.
//   - TestOutages: ClickHouse unreachable, storms of 5xx and 429 responses, pagination drift.
//   - TestOperations: counters on /metrics and the ClickHouse check of /readyz.
//   - TestKillBeforeCheckpointThenRevert: a kill between publish and checkpoint, after which the
//     records change back or disappear, must still end with the tables equal to the truth.
//   - TestStaleMigrationLockDoesNotStall: a migration lock left by a killed run must not stall the
//     next run's sink when no migration is pending.
//   - TestClickHouseRequired: TISYNC_REQUIRE_CLICKHOUSE turns a missing server into a failure.
//   - Benchmark*: change latency, API requests and rows written per cycle, and the daemon's
//     memory while tracking a million records. BENCHMARKS.md records the figures.
//
// With -short every test that runs the daemon skips. The tests need ClickHouse on
// TISYNC_TEST_CLICKHOUSE_ADDR (default 127.0.0.1:9000; start it with
// deploy/local/clickhouse.sh start). They skip when it is unreachable, unless CI or
// TISYNC_REQUIRE_CLICKHOUSE is set, which makes them fail instead. TestMain builds the tisync
// binary once with the go command found on PATH.
package e2e
