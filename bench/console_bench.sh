#!/usr/bin/env bash
# The operator console's message browser at scale: a store of --fill
# conversations (default 1,000,000; a month of traffic, bench/console_fill),
# then the searches the console makes, each at 4 keep-alive connections for
# --seconds, through GET /admin/conversations on a running courier. The
# reference, measured in the same run on the same engine and load, is
# GET /healthz: the round trip with no search at all.
# Target: p99 of every search under 200 ms.
#
# Usage: bench/console_bench.sh [--seconds N] [--fill N] [--data DIR]
#   --data keeps the filled store in DIR (filled once, reused by later runs).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=10
fill=1000000
data=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --fill) fill=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--fill N] [--data DIR]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh --bench >/dev/null
cmake -S . -B build -G Ninja >/dev/null
ninja -C build -j2 courier console_fill >/dev/null

source bench/lib.sh

[ -n "$data" ] || data="$work/data"
if [ ! -f "$data/courier.db" ]; then
  mkdir -p "$data"
  build/console_fill "$data" "$fill"
fi

port=$(free_port)
cat >"$work/courier.yaml" <<CONF
data-dir: $data
retention: 3650d
listeners:
  - name: fhir
    type: http
    address: 127.0.0.1
    port: $port
CONF
build/courier run --config "$work/courier.yaml" 2>"$work/courier.log" &
pids+=($!)
wait_port "$port"
base="http://127.0.0.1:$port"

count=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from conversation').fetchone()[0])" "$data/courier.db")
newest=$(curl -s "$base/admin/conversations?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
middle=$((newest / 2))
day_ms=86400000
now_ms=$(($(date +%s) * 1000))

measure() {  # NAME PATH: prints a row
  read -r rate p50 p99 < <(wrk_numbers "$1" "$(wrk -t2 -c4 -d"${seconds}s" --latency "$base$2")")
  printf '%-28s %9s/s  p50 %7s ms  p99 %7s ms\n' "$1" "$rate" "$p50" "$p99"
  echo "$p99" >>"$work/p99s"
}

echo "console searches over $count stored conversations, 4 connections, ${seconds}s each:"
measure "reference: /healthz" "/healthz"
reference_p99=$(tail -1 "$work/p99s")
: >"$work/p99s"
measure "newest page" "/admin/conversations"
measure "state failed (3%)" "/admin/conversations?state=failed"
measure "route" "/admin/conversations?route=results"
measure "peer + state" "/admin/conversations?peer=peer-7&state=failed"
measure "patient MRN" "/admin/conversations?q=MRN$((middle / 4))"
measure "MSH-10" "/admin/conversations?q=MSG$middle"
measure "Bundle id" "/admin/conversations?q=bundle-$middle"
measure "one day, one route" "/admin/conversations?route=adt-feed&since=$((now_ms - 15 * day_ms))&until=$((now_ms - 14 * day_ms))"
measure "event, page deep in time" "/admin/conversations?event=http://terminology.hl7.org/CodeSystem/v2-0003%7CA08&before=$middle"
measure "in progress (1%), older" "/admin/conversations?state=in-progress&before=$middle"
measure "with a parked delivery" "/admin/conversations?delivery=parked"
worst=$(sort -g "$work/p99s" | tail -1)
echo "worst search p99 ${worst} ms (target < 200 ms); worst/reference p99 $(awk -v a="$worst" -v b="$reference_p99" 'BEGIN {printf "%.1f", a / b}')x"
echo "courier resident memory: $(awk '/VmRSS/ {print $2 / 1024 " MB"}' "/proc/${pids[-1]}/status")"
