#!/usr/bin/env bash
# A destination that is down: how much memory its backlog takes.
#
# courier routes the 4 KB message to a messaging destination on a port
# where nothing listens (every attempt fails and is retried later), and wrk
# sends for a while at 32 connections. Reported: the backlog, how much of it
# waits in the store only (past deliveries-in-memory), and courier's
# resident memory against its own when idle, measured in the same run;
# then the same after a restart, which resumes the whole backlog.
#
# Usage: bench/backlog_bench.sh [--seconds N] [--deliveries-in-memory N]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=30
in_memory=1000
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --deliveries-in-memory) in_memory=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--deliveries-in-memory N]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh --bench >/dev/null
cmake -S . -B build -G Ninja >/dev/null
ninja -C build -j2 courier >/dev/null

source bench/lib.sh

export MESSAGE_TEMPLATE=$PWD/bench/data/bench-message-template.json

port=$(free_port)
closed=$(free_port)  # nothing listens there
cat >"$work/routes.yaml" <<ROUTE
route: to-a-lab-that-is-down
from: fhir
when:
  event: http://example.org/fhir/message-events|order-request
to:
  - name: lab
    pattern: messaging
    endpoint: http://127.0.0.1:$closed/fhir
    retry: { attempts: 1000, backoff: 1s..30s }
ROUTE
cat >"$work/courier.yaml" <<CONF
data-dir: $work/data
sync-wait: 1ms
deliveries-in-memory: $in_memory
listeners:
  - name: fhir
    type: http
    address: 127.0.0.1
    port: $port
routes: [$work/routes.yaml]
CONF

start_courier() {
  build/courier run --config "$work/courier.yaml" 2>>"$work/courier.log" &
  courier_pid=$!
  pids+=($courier_pid)
  wait_port "$port"
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$courier_pid/status"; }
gauge() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1{" 'index($0, m) == 1 {print $2}'; }

start_courier
idle=$(rss_kb)
out=$(CONTENT_TYPE=application/fhir+json wrk -t2 -c32 -d"${seconds}s" -s bench/post_message.lua \
  "http://127.0.0.1:$port/fhir/\$process-message")
sleep 2
loaded=$(rss_kb)
echo "backlog benchmark: 4 KB JSON message to a destination that is down, ${seconds}s at 32 connections," \
     "deliveries-in-memory $in_memory, on $(nproc) cores"
echo "accepted $(awk '/requests in/ {print $1}' <<<"$out") messages ($(awk '/Requests\/sec/ {print $2}' <<<"$out")/s)"
echo "backlog $(gauge courier_delivery_queue_depth), in the store only $(gauge courier_deliveries_in_store_only)"
echo "resident memory: idle ${idle} kB, with the backlog ${loaded} kB ($(awk -v a="$loaded" -v b="$idle" 'BEGIN { printf "%.2f", a / b }')x idle)"

kill -TERM "$courier_pid"
wait "$courier_pid" 2>/dev/null || true
start_courier
# Start-up resumes the backlog on the engine's strand after the port opens:
# wait until what it reads back stops changing.
previous=none
for _ in $(seq 600); do
  now="$(gauge courier_delivery_queue_depth) $(gauge courier_deliveries_in_store_only)"
  [ "$now" = "$previous" ] && [ "$now" != " " ] && break
  previous=$now
  sleep 0.5
done
echo "after a restart: backlog $(gauge courier_delivery_queue_depth)," \
     "in the store only $(gauge courier_deliveries_in_store_only), resident memory $(rss_kb) kB" \
     "($(awk -v a="$(rss_kb)" -v b="$idle" 'BEGIN { printf "%.2f", a / b }')x idle)"
