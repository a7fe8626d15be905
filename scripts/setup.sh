#!/usr/bin/env bash
# Installs everything courier needs to build and test, from Debian's packages.
# Idempotent: packages already present are left as they are. Runs as root
# (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-test1.81-dev
  libpugixml-dev nlohmann-json3-dev libyaml-cpp-dev
  libcli11-dev                  # the command line parser: subcommands, --help, usage errors
  libre2-dev                    # FHIRPath matches(): linear-time regexes, safe on hostile patterns
  libsqlite3-dev libssl-dev
  libjemalloc-dev               # the engine's allocator: less CPU per message than glibc's
  clang-14 libclang-rt-14-dev   # libFuzzer targets and sanitizer builds
  python3-hl7                   # Debian's mllp_send, an HL7 v2 peer for tests
  python3-jsonschema python3-yaml  # the tests check shipped config and routes against schemas/courier
  openssl curl                  # the security tests make throwaway certificates and connect as peers
  python3-jwt python3-cryptography  # ... and sign bearer tokens (RS256, ES384) as an issuer would
  chromium                      # the operator console's end-to-end test drives it headless (playwright-core)
)

# The messaging benchmark's load generator and reference server.
bench_packages=(wrk nginx-light)
[ "${1:-}" = "--bench" ] && packages+=("${bench_packages[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Node.js and npm run the independent FHIR peers the tests use. Some images ship
# a Node.js build that bundles npm; Debian's npm package conflicts with it.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
