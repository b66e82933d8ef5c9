package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tisyncBinary is the tisync executable that TestMain builds for the whole package.
var tisyncBinary string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	flag.Parse()
	if os.Getenv(probeEnv) != "" || testing.Short() {
		// Neither a child run of TestClickHouseRequired nor a -short run starts the daemon.
		return m.Run()
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the go command is not on PATH; it is needed to build tisync:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "tisync-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	tisyncBinary = filepath.Join(dir, "tisync")
	build := exec.Command(goTool, "build", "-o", tisyncBinary, "github.com/tisync/tisync/cmd/tisync")
	build.Stdout = os.Stderr
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build tisync:", err)
		return 1
	}
	return m.Run()
}
