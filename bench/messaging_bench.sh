#!/usr/bin/env bash
# The messaging benchmark: POST [base]/$process-message with a 4 KB JSON
# message Bundle (fresh ids on every request), through a route to a `file`
# destination, acknowledged after the durable commit; driven by wrk with 32
# and 128 keep-alive connections. In the same run, on the same load:
#   nginx      answering the POST with a fixed 200 (the wire limit)
#   durable    a minimal server that appends each body to a file and answers
#              after the fdatasync that covers it, with group commit (the
#              disk's durability limit; bench/durable_server.cpp)
#   node-red   Node-RED 4 with the flow a user would build instead: HTTP in,
#              switch on the event code, append to a file, HTTP 200; no
#              durability (sent as application/json, which it parses)
# Then courier's p99 latency at half its own peak rate, and with --million its
# resident memory after one million messages.
#
# Usage: bench/messaging_bench.sh [--seconds N] [--million]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=10
million=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --million) million=1; shift ;;
    *) echo "usage: $0 [--seconds N] [--million]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh --bench >/dev/null
cmake -S . -B build -G Ninja >/dev/null
ninja -C build -j2 courier durable_server >/dev/null
(cd bench/node-red && [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null)

source bench/lib.sh

export MESSAGE_TEMPLATE=$PWD/bench/data/bench-message-template.json

# run_wrk NAME URL CONNECTIONS [CONTENT_TYPE]: prints "rate p99_ms"
run_wrk() {
  local out numbers
  out=$(CONTENT_TYPE=${4:-application/fhir+json} wrk -t2 -c"$3" -d"${seconds}s" --latency -s bench/post_message.lua "$2")
  numbers=$(wrk_numbers "$1, $3 connections" "$out")
  awk '{print $1, $3}' <<<"$numbers"
}

# nginx: the wire limit.
start_nginx

durable_port=$(free_port)
build/durable_server "$durable_port" "$work/durable.log" &
pids+=($!)

node_red_port=$(free_port)
NODE_RED_PORT=$node_red_port NODE_RED_USER_DIR=$work/node-red NODE_RED_OUT=$work/node-red-out.log \
  node bench/node-red/node_modules/node-red/red.js --settings bench/node-red/settings.js >"$work/node-red.log" 2>&1 &
pids+=($!)

courier_port=$(free_port)
mkdir -p "$work/courier"
cat >"$work/courier/routes.yaml" <<ROUTE
route: bench
from: fhir
when:
  event: http://example.org/fhir/message-events|order-request
  focus: ServiceRequest
to:
  - name: outbox
    pattern: file
    folder: $work/courier/outbox
    parallel: 32     # no ordering needed between these messages
ROUTE
cat >"$work/courier/courier.yaml" <<CONF
data-dir: $work/courier/data
listeners:
  - name: fhir
    type: http
    address: 127.0.0.1
    port: $courier_port
routes: [$work/courier/routes.yaml]
CONF
build/courier run --config "$work/courier/courier.yaml" 2>"$work/courier.log" &
courier_pid=$!
pids+=($courier_pid)

wait_port "$nginx_port"; wait_port "$durable_port"; wait_port "$node_red_port"; wait_port "$courier_port"

# courier's CPU seconds by thread and the messages it has taken, from its
# /metrics: CPU per message is steadier than a rate on a shared machine.
cpu_snapshot() {
  curl -s "http://127.0.0.1:$courier_port/metrics" | awk '
    /^courier_thread_cpu_seconds_total/ { match($0, /thread="[^"]*"/); print substr($0, RSTART + 8, RLENGTH - 9), $2 }
    /^courier_messages_received_total/ { n += $2 }
    END { print "messages", n }'
}

declare -A rate p99
for c in 32 128; do
  read -r rate[nginx,$c] p99[nginx,$c] < <(run_wrk nginx "http://127.0.0.1:$nginx_port/fhir/\$process-message" $c)
  read -r rate[durable,$c] p99[durable,$c] < <(run_wrk durable "http://127.0.0.1:$durable_port/" $c)
  read -r rate[node-red,$c] p99[node-red,$c] < <(run_wrk node-red "http://127.0.0.1:$node_red_port/fhir/process-message" $c application/json)
  [ "$c" = 32 ] && cpu_snapshot > "$work/cpu-before"
  read -r rate[courier,$c] p99[courier,$c] < <(run_wrk courier "http://127.0.0.1:$courier_port/fhir/\$process-message" $c)
  [ "$c" = 32 ] && cpu_snapshot > "$work/cpu-after"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "messaging benchmark: 4 KB JSON message, ${seconds}s per run, wrk -t2, on $(nproc) cores"
printf "%-10s %6s %12s %10s\n" target conns "requests/s" "p99 ms"
for c in 32 128; do
  for t in nginx durable node-red courier; do
    printf "%-10s %6s %12.0f %10s\n" "$t" "$c" "${rate[$t,$c]}" "${p99[$t,$c]}"
  done
done
for c in 32 128; do
  echo "ratios at $c connections: courier/durable $(ratio "${rate[courier,$c]}" "${rate[durable,$c]}") (target >= 0.8)," \
       "courier/node-red $(ratio "${rate[courier,$c]}" "${rate[node-red,$c]}") (target >= 3)," \
       "courier/nginx $(ratio "${rate[courier,$c]}" "${rate[nginx,$c]}")"
done

awk 'NR == FNR { before[$1] = $2; next } { after[$1] = $2 }
  END {
    n = after["messages"] - before["messages"]
    if (n <= 0) exit
    line = sprintf("courier CPU per message at 32 connections (%d messages):", n)
    for (t in after) if (t != "messages") { us = (after[t] - before[t]) * 1e6 / n; total += us; line = line sprintf(" %s %.0f us,", t, us) }
    printf "%s all threads %.0f us\n", line, total
  }' "$work/cpu-before" "$work/cpu-after"

# p99 at half of courier's own peak, paced, in a steady state: first the
# file destination catches up with what the saturating runs acknowledged
# faster than it could write (at most a minute).
backlog() {
  curl -s "http://127.0.0.1:$courier_port/metrics" |
    awk '/^courier_delivery_queue_depth/ { n += $2 } END { print n + 0 }'
}
waited=0
while [ "$(backlog)" -gt 0 ] && [ "$waited" -lt 60 ]; do sleep 1; waited=$((waited + 1)); done
echo "the outbox caught up in ${waited}s (backlog now $(backlog))"
peak=$(awk -v a="${rate[courier,32]}" -v b="${rate[courier,128]}" 'BEGIN { print (a > b ? a : b) }')
half=$(awk -v p="$peak" 'BEGIN { printf "%d", p / 2 }')
paced=$(RATE=$half CONNECTIONS=32 run_wrk courier-paced "http://127.0.0.1:$courier_port/fhir/\$process-message" 32)
echo "courier at half its peak ($half/s requested, 32 connections): $(awk '{printf "%.0f requests/s, p99 %s ms", $1, $2}' <<<"$paced") (target p99 < 10 ms)"

delivered=$(find "$work/courier/outbox" -name '*.json' | wc -l)
echo "courier delivered $delivered files to the outbox so far; RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$courier_pid/status)"

if [ "$million" = 1 ]; then
  echo "sending one million messages (128 connections)..."
  start=$(date +%s)
  total=0
  while [ "$total" -lt 1000000 ]; do
    out=$(wrk -t2 -c128 -d30s -s bench/post_message.lua "http://127.0.0.1:$courier_port/fhir/\$process-message")
    total=$((total + $(awk '/requests in/ {print $1}' <<<"$out")))
    echo "  $total sent, RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$courier_pid/status)"
  done
  echo "after $total messages in $(( $(date +%s) - start ))s: courier RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$courier_pid/status) (target < 100 MB)"
fi
