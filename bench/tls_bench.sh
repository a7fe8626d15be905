#!/usr/bin/env bash
# The TLS benchmark: the same engine, the same messages, over plain TCP and
# over TLS in one run, so that the ratio is TLS's own cost:
#   $process-message (4 KB JSON message to a file destination, acknowledged
#   after the durable commit), wrk with 32 kept-alive connections, and with
#   a new connection for every request (Connection: close);
#   MLLP ingest (1.5 KB ADT^A01, commit ACK after the durable write), 16
#   connections kept alive, and a new connection per message (bench/mllp_load);
#   the TLS handshake rate alone, measured by openssl s_time (new sessions,
#   no resumption) against courier's HTTPS listener.
# Throwaway certificates (P-256) are made for the run with openssl.
#
# Usage: bench/tls_bench.sh [--seconds N]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=10
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh --bench >/dev/null
cmake -S . -B build -G Ninja >/dev/null
ninja -C build -j2 courier mllp_load >/dev/null

source bench/lib.sh
export MESSAGE_TEMPLATE=$PWD/bench/data/bench-message-template.json

# The certificates: a CA and a server certificate for localhost.
tls=$work/tls
mkdir -p "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/ca.key" -out "$tls/ca.pem" \
  -days 2 -subj "/CN=bench CA" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/server.key" \
  -out "$tls/server.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tls/ext"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
  -extfile "$tls/ext" -out "$tls/server.pem" 2>/dev/null

http_port=$(free_port); https_port=$(free_port); mllp_port=$(free_port); mllps_port=$(free_port)
mkdir -p "$work/courier"
cat >"$work/courier/routes.yaml" <<ROUTE
- route: messages
  when: {event: http://example.org/fhir/message-events|order-request}
  to: [{name: outbox, pattern: file, folder: $work/courier/outbox, parallel: 32}]
- route: v2
  to: [{name: v2-outbox, pattern: file, folder: $work/courier/v2-outbox, parallel: 32}]
ROUTE
tls_block="    tls: {cert: $tls/server.pem, key: $tls/server.key}"
cat >"$work/courier/courier.yaml" <<CONF
data-dir: $work/courier/data
listeners:
  - {name: http, type: http, address: 127.0.0.1, port: $http_port}
  - name: https
    type: http
    address: 127.0.0.1
    port: $https_port
$tls_block
  - {name: mllp, type: mllp, address: 127.0.0.1, port: $mllp_port}
  - name: mllps
    type: mllp
    address: 127.0.0.1
    port: $mllps_port
$tls_block
routes: [$work/courier/routes.yaml]
CONF
build/courier run --config "$work/courier/courier.yaml" 2>"$work/courier.log" &
pids+=($!)
for p in $http_port $https_port $mllp_port $mllps_port; do wait_port "$p"; done

# run_wrk NAME URL [wrk options]: prints "rate p99_ms"
run_wrk() {
  local name=$1 url=$2 out
  shift 2
  out=$(wrk -t2 -c32 -d"${seconds}s" --latency -s bench/post_message.lua "$@" "$url")
  awk '{print $1, $3}' <<<"$(wrk_numbers "$name" "$out")"
}
# The engine's own pace drifts as its store grows, so each pair runs twice,
# in both orders, and the two results of each are averaged.
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + b) / 2 }'; }
pair() { # NAME_A NAME_B then two commands that print "rate p99": prints "rateA p99A rateB p99B"
  local a1 a2 b1 b2
  a1=$(eval "$3"); b1=$(eval "$4"); b2=$(eval "$4"); a2=$(eval "$3")
  echo "$(mean "${a1% *}" "${a2% *}") $(mean "${a1#* }" "${a2#* }") $(mean "${b1% *}" "${b2% *}") $(mean "${b1#* }" "${b2#* }")"
}
path='/fhir/$process-message'
read -r http_keep http_keep_p99 https_keep https_keep_p99 < <(pair http https \
  'run_wrk "http kept-alive" "http://127.0.0.1:$http_port$path"' \
  'run_wrk "https kept-alive" "https://localhost:$https_port$path"')
read -r http_new http_new_p99 https_new https_new_p99 < <(pair http https \
  'run_wrk "http new connections" "http://127.0.0.1:$http_port$path" -H "Connection: close"' \
  'run_wrk "https new connections" "https://localhost:$https_port$path" -H "Connection: close"')

message=bench/data/adt_a01_1k5.hl7
mllp_run() { build/mllp_load "$@" | awk '{print $1, $3; if ($4 > 0) print "  (" $4 " errors)" > "/dev/stderr"}'; }
read -r mllp_rate mllp_p99 mllps_rate mllps_p99 < <(pair mllp mllps \
  'mllp_run "$mllp_port" 16 "$seconds" "$message"' \
  'mllp_run "$mllps_port" 16 "$seconds" "$message" --tls "$tls/ca.pem"')
read -r mllp_new mllp_new_p99 mllps_new mllps_new_p99 < <(pair mllp mllps \
  'mllp_run "$mllp_port" 16 "$seconds" "$message" --reconnect 1' \
  'mllp_run "$mllps_port" 16 "$seconds" "$message" --tls "$tls/ca.pem" --reconnect 1')

handshakes=$(openssl s_time -connect "127.0.0.1:$https_port" -new -time "$seconds" -CAfile "$tls/ca.pem" 2>/dev/null |
  awk '/connections in .* real seconds/ {for (i = 1; i <= NF; ++i) if ($i == "connections") c = $(i-1); for (i = 1; i <= NF; ++i) if ($i == "real") s = $(i-1); if (s > 0) printf "%.0f", c / s}')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "TLS benchmark: ${seconds}s per run (each the mean of two), on $(nproc) cores; TLS 1.3, P-256 certificate"
printf "%-40s %12s %10s\n" run "per second" "p99 ms"
printf "%-40s %12.0f %10s\n" "\$process-message, plain, kept-alive" "$http_keep" "$http_keep_p99"
printf "%-40s %12.0f %10s\n" "\$process-message, TLS, kept-alive" "$https_keep" "$https_keep_p99"
printf "%-40s %12.0f %10s\n" "\$process-message, plain, new connections" "$http_new" "$http_new_p99"
printf "%-40s %12.0f %10s\n" "\$process-message, TLS, new connections" "$https_new" "$https_new_p99"
printf "%-40s %12.0f %10s\n" "MLLP, plain, kept-alive" "$mllp_rate" "$mllp_p99"
printf "%-40s %12.0f %10s\n" "MLLP, TLS, kept-alive" "$mllps_rate" "$mllps_p99"
printf "%-40s %12.0f %10s\n" "MLLP, plain, new connections" "$mllp_new" "$mllp_new_p99"
printf "%-40s %12.0f %10s\n" "MLLP, TLS, new connections" "$mllps_new" "$mllps_new_p99"
printf "%-40s %12s\n" "TLS handshakes alone (openssl s_time)" "${handshakes:-n/a}"
echo "ratios TLS/plain: \$process-message kept-alive $(ratio "$https_keep" "$http_keep") (target >= 0.7)," \
     "new connections $(ratio "$https_new" "$http_new"); MLLP kept-alive $(ratio "$mllps_rate" "$mllp_rate") (target >= 0.7)," \
     "new connections $(ratio "$mllps_new" "$mllp_new")"
