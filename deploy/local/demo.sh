#!/usr/bin/env bash
# Runs the main job on one machine: ClickHouse (installed with apt when missing), the TestInvite
# simulator with a realistic organization and continuous churn, and `tisync run` with an embedded
# NATS server, writing into ClickHouse. Ctrl-C stops tisync and the simulator; ClickHouse keeps
# running (deploy/local/clickhouse.sh stop stops it).
#
# Environment: DEMO_TASKS (20), DEMO_CANDIDATES (50000), DEMO_SESSIONS (150000), DEMO_CHURN_RATE
# (churn events per second, 20), DEMO_SIM_ADDR (127.0.0.1:8080), and CLICKHOUSE_TCP_PORT and
# CLICKHOUSE_HTTP_PORT (9000, 8123) as for deploy/local/clickhouse.sh.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
export PATH=$PATH:/usr/local/go/bin

tasks=${DEMO_TASKS:-20}
candidates=${DEMO_CANDIDATES:-50000}
sessions=${DEMO_SESSIONS:-150000}
churn=${DEMO_CHURN_RATE:-20}
sim_addr=${DEMO_SIM_ADDR:-127.0.0.1:8080}
org=DemoOrganization0001
log_dir=.data/demo
mkdir -p "$log_dir"

log() { printf 'demo: %s\n' "$*" >&2; }
port_in_use() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

deploy/local/clickhouse.sh start

log "building bin/tisync and bin/testinvite-sim"
go build -ldflags "-X main.version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)" -o bin/tisync ./cmd/tisync
go build -o bin/testinvite-sim ./cmd/testinvite-sim

for addr in "$sim_addr" "${TISYNC_NATS_EMBEDDED_LISTEN:-127.0.0.1:4222}" "${TISYNC_HTTP_LISTEN:-127.0.0.1:9464}"; do
  [[ $addr == none ]] && continue
  if port_in_use "$addr"; then
    log "$addr is already in use: stop the process there (an earlier demo?) and try again"
    exit 1
  fi
done

log "starting the simulator on $sim_addr: $tasks tasks, $candidates tickets, $sessions test sessions, $churn changes per second"
# Churn also creates tasks now and then; the cap keeps a demo left running from growing without end.
bin/testinvite-sim -addr "$sim_addr" -organization-id "$org" -tasks "$tasks" -candidates "$candidates" \
  -sessions "$sessions" -churn-rate "$churn" -max-tasks $((tasks + 5)) -log-json >"$log_dir/simulator.log" 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; log "simulator stopped"' EXIT

for _ in $(seq 1 120); do
  curl -fsS "http://$sim_addr/_admin/stats" >/dev/null 2>&1 && break
  kill -0 "$sim_pid" 2>/dev/null || { tail -n 20 "$log_dir/simulator.log" >&2; log "the simulator exited; its log is $log_dir/simulator.log"; exit 1; }
  sleep 0.5
done

ch_port=${CLICKHOUSE_TCP_PORT:-9000}
cat >&2 <<MSG
demo: tisync is starting; the first full load takes a minute or two. In another terminal:
demo:   clickhouse-client --port $ch_port --query 'SELECT * FROM tisync.task_funnel ORDER BY invited DESC LIMIT 10'
demo:   clickhouse-client --port $ch_port --query 'SELECT * FROM tisync.step_pass_rates LIMIT 10'
demo:   curl -s http://${TISYNC_HTTP_LISTEN:-127.0.0.1:9464}/metrics | grep ^tisync_poll
demo:   TISYNC_CLICKHOUSE_ADDRESSES=127.0.0.1:$ch_port bin/tisync status --config deploy/local/demo.yaml
demo: Ctrl-C stops tisync and the simulator.
MSG

# The demo key is the simulator's default; a real deployment reads its key from a secret.
TISYNC_TESTINVITE_PRIVATE_KEY=sim-private-key TISYNC_TESTINVITE_BASE_URL="http://$sim_addr" \
  TISYNC_CLICKHOUSE_ADDRESSES="${TISYNC_CLICKHOUSE_ADDRESSES:-127.0.0.1:$ch_port}" \
  bin/tisync run --config deploy/local/demo.yaml
