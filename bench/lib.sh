# Shared by the HTTP benchmarks (sourced): a scratch folder ($work) and the
# servers started (pids), both cleaned up on exit; free ports, waiting for a
# server, wrk runs reduced to their numbers, and nginx as the wire-limit
# reference.

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing on port $1" >&2; exit 1; }

# A latency from wrk's table ("1.52ms", "840.00us", "1.02s") in milliseconds.
wrk_percentile() {
  awk -v p="$1" '$1 == p {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}'
}

# wrk_numbers NAME OUTPUT: prints "rate p50_ms p99_ms", and wrk's errors on stderr.
wrk_numbers() {
  local rate p50 p99 errors
  rate=$(awk '/Requests\/sec/ {print $2}' <<<"$2")
  p50=$(wrk_percentile "50%" <<<"$2")
  p99=$(wrk_percentile "99%" <<<"$2")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$2")
  [ -z "$errors" ] || echo "  ($1: $errors)" >&2
  echo "$rate $p50 $p99"
}

# start_nginx: answers every request with a fixed 200; sets nginx_port.
start_nginx() {
  nginx_port=$(free_port)
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$nginx_port;
    client_max_body_size 16m;
    location / { return 200 'ok'; }
  }
}
CONF
  nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' &
  pids+=($!)
}
