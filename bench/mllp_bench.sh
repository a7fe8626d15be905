#!/usr/bin/env bash
# The MLLP benchmark: a 1.5 KB ADT^A01 (bench/data/adt_a01_1k5.hl7, a fresh
# MSH-10 and patient on every message) sent over 16 MLLP connections by
# bench/mllp_load.cpp, each waiting for its ACK. In the same run, on the
# same load:
#   wire       a minimal responder that returns a fixed ACK (the wire limit)
#   durable    a minimal responder that appends each message to a file and
#              ACKs after the fdatasync covering it, with group commit (the
#              durability limit)
#   peer       python3-hl7's asyncio MLLP server parsing each message and
#              answering create_ack()
#   courier    MSH-15 AL: the commit ACK (CA) after the durable write, the
#              message routed on to a file destination
# Then v2 -> FHIR conversion alone (bench/v2_convert_bench.cpp), and the
# shipped default route end to end (MLLP -> FHIR -> REST upsert into the
# FHIR store -> AA), messages/s and p99.
#
# Usage: bench/mllp_bench.sh [--seconds N]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=10
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N]" >&2; exit 2 ;;
  esac
done
connections=16

scripts/setup.sh --bench >/dev/null
cmake -S . -B build -G Ninja >/dev/null
ninja -C build -j2 courier mllp_load mllp_reference v2_convert_bench >/dev/null

source bench/lib.sh

commit_message=bench/data/adt_a01_1k5.hl7
# Original mode (no MSH-15/16): AA only once the route's destinations took it.
sed 's/|||AL|NE||UNICODE UTF-8/||||||UNICODE UTF-8/' "$commit_message" >"$work/adt_original.hl7"

# load NAME PORT FILE [--rate N]: prints "rate p50 p99 errors"
load() {
  local name=$1 port=$2 file=$3
  shift 3
  local numbers
  numbers=$(build/mllp_load "$port" "$connections" "$seconds" "$file" "$@")
  read -r _ _ _ errors <<<"$numbers"
  [ "$errors" = 0 ] || echo "  ($name: $errors messages not acknowledged with AA/CA)" >&2
  echo "$numbers"
}

wire_port=$(free_port)
build/mllp_reference "$wire_port" fixed &
pids+=($!)
durable_port=$(free_port)
build/mllp_reference "$durable_port" durable "$work/durable.log" &
pids+=($!)
peer_port=$(free_port)
/usr/bin/python3 bench/hl7_peer.py "$peer_port" &
pids+=($!)

# courier: the commit ACK after the durable write; the message then goes to
# a file destination.
start_courier() { # NAME ROUTES: starts courier with these routes, sets mllp_port and http_port
  local dir=$work/$1
  mkdir -p "$dir"
  echo "$2" >"$dir/routes.yaml"
  mllp_port=$(free_port)
  http_port=$(free_port)
  cat >"$dir/courier.yaml" <<CONF
data-dir: $dir/data
hl7v2-maps: $PWD/schemas/hl7v2/maps
listeners:
  - name: fhir
    type: http
    address: 127.0.0.1
    port: $http_port
  - name: mllp
    type: mllp
    address: 127.0.0.1
    port: $mllp_port
routes: [$dir/routes.yaml]
CONF
  build/courier run --config "$dir/courier.yaml" 2>"$dir/courier.log" &
  pids+=($!)
  wait_port "$mllp_port"
}

start_courier ingest "route: ingest
from: mllp
to:
  - name: outbox
    pattern: file
    folder: $work/ingest/outbox
    parallel: 16"
ingest_port=$mllp_port
wait_port "$wire_port"; wait_port "$durable_port"; wait_port "$peer_port"

read -r wire_rate wire_p50 wire_p99 _ < <(load wire "$wire_port" "$commit_message")
read -r durable_rate durable_p50 durable_p99 _ < <(load durable "$durable_port" "$commit_message")
read -r peer_rate peer_p50 peer_p99 _ < <(load peer "$peer_port" "$commit_message")
read -r courier_rate courier_p50 courier_p99 _ < <(load courier "$ingest_port" "$commit_message")
kill "${pids[-1]}"

# The shipped default route: v2 -> FHIR -> conditional upserts into the FHIR store -> AA.
start_courier default "$(cat routes/v2-feeds.yaml)"
read -r route_rate route_p50 route_p99 _ < <(load default-route "$mllp_port" "$work/adt_original.hl7")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "MLLP benchmark: 1.5 KB ADT^A01, $connections connections, ${seconds}s per run, on $(nproc) cores"
printf "%-26s %12s %8s %8s\n" target "messages/s" "p50 ms" "p99 ms"
printf "%-26s %12.0f %8s %8s\n" "wire (fixed ACK)" "$wire_rate" "$wire_p50" "$wire_p99"
printf "%-26s %12.0f %8s %8s\n" "durable (append+fdatasync)" "$durable_rate" "$durable_p50" "$durable_p99"
printf "%-26s %12.0f %8s %8s\n" "peer (python3-hl7)" "$peer_rate" "$peer_p50" "$peer_p99"
printf "%-26s %12.0f %8s %8s\n" "courier (commit ACK)" "$courier_rate" "$courier_p50" "$courier_p99"
printf "%-26s %12.0f %8s %8s\n" "courier default route (AA)" "$route_rate" "$route_p50" "$route_p99"
echo "courier/durable $(ratio "$courier_rate" "$durable_rate") (target >= 0.7), courier/peer $(ratio "$courier_rate" "$peer_rate") (target >= 4), courier/wire $(ratio "$courier_rate" "$wire_rate")"
echo
build/v2_convert_bench
