// Package deploytest holds the tests of the deployment files under deploy/ and of
// docker-compose.yml, and has no code of its own. Its tests parse every file with the parser of the
// tool that reads it: nats-server's configuration parser, Compose's loader, the Kubernetes API
// types, Prometheus's PromQL and rule parsers, systemd-analyze and BuildKit's Dockerfile parser.
// They also check the files against the code, so that a renamed setting, metric or migration
// privilege fails a test instead of a deployment.
//
// The tests build cmd/tisync and cmd/testinvite-sim once, and start nats-server in-process on
// loopback ports. systemd-analyze is used when installed; without it, the tests that need it skip,
// unless the CI environment variable is set.
package deploytest

import "time"

// stopMargin is the least time a supervisor's stop grace period (Kubernetes, compose, systemd) must
// leave beyond tisync's shutdown_timeout, which bounds its whole graceful stop.
const stopMargin = 10 * time.Second
