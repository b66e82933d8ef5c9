package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tisync/tisync/sink/clickhouse/clickhousetest"
)

// probeEnv marks a run of the test binary that only probes clickhousetest.Addr.
const probeEnv = "TISYNC_E2E_CLICKHOUSE_PROBE"

// TestClickHouseRequired runs clickhousetest.Addr in a child test process against an unreachable
// address with TISYNC_REQUIRE_CLICKHOUSE set, as `make test` sets it, and expects a failure: a
// suite that requires ClickHouse must not pass by skipping its integration tests.
func TestClickHouseRequired(t *testing.T) {
	if os.Getenv(probeEnv) != "" {
		clickhousetest.Addr(t)
		return
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestClickHouseRequired$", "-test.v", "-test.count=1")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CI=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, probeEnv+"=1", "TISYNC_REQUIRE_CLICKHOUSE=1", "TISYNC_TEST_CLICKHOUSE_ADDR="+freeAddr(t))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("clickhousetest.Addr skipped instead of failing with TISYNC_REQUIRE_CLICKHOUSE=1 and no server; it reads only CI:\n%s", out)
	}
}
