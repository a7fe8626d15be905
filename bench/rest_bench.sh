#!/usr/bin/env bash
# The REST store benchmark. Creates: POST [base]/ServiceRequest with a ~1 KB
# resource (a fresh identifier each time), 32 keep-alive connections, each
# answered after the durable commit; in the same run and on the same load,
#   nginx      answering the POST with a fixed 200 (the wire limit)
#   durable    appending each body to a file and answering after the
#              fdatasync that covers it, with group commit (the disk's
#              durability limit; bench/durable_server.cpp)
# Then, with at least --fill resources stored (default 100000), search
# latency p50/p99 at 4 connections for one order by identifier, and for the
# active actionable orders (_tag + status, a page of 50).
# Targets: creates at least 0.5x the durability limit; search p99 < 5 ms.
#
# Usage: bench/rest_bench.sh [--seconds N] [--fill N]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=10
fill=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --fill) fill=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--fill N]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh --bench >/dev/null
cmake -S . -B build -G Ninja >/dev/null
ninja -C build -j2 courier durable_server >/dev/null

source bench/lib.sh

start_nginx
durable_port=$(free_port)
build/durable_server "$durable_port" "$work/durable.log" &
pids+=($!)

courier_port=$(free_port)
mkdir -p "$work/courier"
cat >"$work/courier/courier.yaml" <<CONF
data-dir: $work/courier/data
listeners:
  - name: fhir
    type: http
    address: 127.0.0.1
    port: $courier_port
CONF
build/courier run --config "$work/courier/courier.yaml" 2>"$work/courier.log" &
pids+=($!)
wait_port "$nginx_port"; wait_port "$durable_port"; wait_port "$courier_port"

creates() {  # NAME URL: prints "rate p50 p99"
  wrk_numbers "$1" "$(wrk -t2 -c32 -d"${seconds}s" --latency -s bench/rest_create.lua "$2")"
}
read -r nginx_rate _ nginx_p99 < <(creates nginx "http://127.0.0.1:$nginx_port/fhir/ServiceRequest")
read -r durable_rate _ durable_p99 < <(creates durable "http://127.0.0.1:$durable_port/")
read -r courier_rate _ courier_p99 < <(creates courier "http://127.0.0.1:$courier_port/fhir/ServiceRequest")

stored() {
  curl -s "http://127.0.0.1:$courier_port/fhir/ServiceRequest?_count=0" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["total"])'
}
while [ "$(stored)" -lt "$fill" ]; do
  wrk -t2 -c32 -d10s -s bench/rest_create.lua "http://127.0.0.1:$courier_port/fhir/ServiceRequest" >/dev/null
done
total=$(stored)

# Identifiers run ORD-<thread>-<n> per wrk run; n up to the shortest run's count is always there.
search() {  # KIND: prints "rate p50 p99"
  wrk_numbers "search $1" "$(SEARCH=$1 PER_THREAD=1000 wrk -t1 -c4 -d"${seconds}s" --latency -s bench/rest_search.lua \
    "http://127.0.0.1:$courier_port")"
}
read -r id_rate id_p50 id_p99 < <(search identifier)
read -r tag_rate tag_p50 tag_p99 < <(search tag)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "REST store benchmark: ~1 KB ServiceRequest, ${seconds}s per run, on $(nproc) cores"
printf "%-10s %12s %10s\n" creates "requests/s" "p99 ms"
printf "%-10s %12.0f %10s\n" nginx "$nginx_rate" "$nginx_p99" durable "$durable_rate" "$durable_p99" courier "$courier_rate" "$courier_p99"
echo "courier/durable $(ratio "$courier_rate" "$durable_rate") (target >= 0.5), courier/nginx $(ratio "$courier_rate" "$nginx_rate")"
echo "search over $total stored ServiceRequests, 4 connections:"
printf "  identifier      %8.0f/s  p50 %s ms  p99 %s ms (target p99 < 5 ms)\n" "$id_rate" "$id_p50" "$id_p99"
printf "  _tag + status   %8.0f/s  p50 %s ms  p99 %s ms (target p99 < 5 ms)\n" "$tag_rate" "$tag_p50" "$tag_p99"
echo "courier RSS $(awk '/VmRSS/ {print $2, $3}' /proc/"${pids[-1]}"/status)"
