#!/usr/bin/env bash
# Sets up, builds and runs courier on the default configuration
# (conf/courier.yaml). Extra arguments go to `courier run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build -j2 --target courier
exec build/courier run "$@"
