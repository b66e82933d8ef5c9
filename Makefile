# Every target works on a fresh Debian machine with Go: `make test` and `make demo` install and
# start the services they need themselves.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
# The local ClickHouse's ports; deploy/local/clickhouse.sh reads the same variables.
export CLICKHOUSE_TCP_PORT ?= 9000
export CLICKHOUSE_HTTP_PORT ?= 8123
export TISYNC_TEST_CLICKHOUSE_ADDR ?= 127.0.0.1:$(CLICKHOUSE_TCP_PORT)

.PHONY: build test test-short vet bench demo services-up services-down clean

# VERSION names the build in `tisync version` and tisync_build_info.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/tisync ./cmd/tisync
	$(GO) build -o bin/testinvite-sim ./cmd/testinvite-sim

vet:
	$(GO) vet ./...

# test starts ClickHouse (installing it with apt when missing) and runs the whole suite with the
# integration tests required (a test that cannot reach a service fails instead of skipping) and
# the race detector on.
test: services-up
	$(GO) vet ./...
	TISYNC_REQUIRE_CLICKHOUSE=1 $(GO) test -race -count=1 -timeout 30m ./...

# test-short runs the unit tests only; tests that need ClickHouse skip when it is not running.
test-short:
	$(GO) test -short -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

services-up:
	deploy/local/clickhouse.sh start

services-down:
	deploy/local/clickhouse.sh stop

# demo runs the main job: ClickHouse, the TestInvite simulator with churn, and tisync with an
# embedded NATS server. Ctrl-C stops tisync and the simulator; `make services-down` stops ClickHouse.
demo:
	deploy/local/demo.sh

clean:
	rm -rf bin
