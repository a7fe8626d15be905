#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: first a normal build, then
# the same tests built with AddressSanitizer and UndefinedBehaviorSanitizer.
# --quick skips the sanitizer pass.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

run_suite() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja "$@" > /dev/null
  cmake --build "$dir" -j2
  (cd "$dir" && ctest --output-on-failure --timeout 900)
}

echo "== tests (RelWithDebInfo)"
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${1:-}" != "--quick" ]; then
  echo "== tests under AddressSanitizer and UndefinedBehaviorSanitizer"
  run_suite build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOURIER_SANITIZE=ON -DCOURIER_BENCH=OFF
fi
