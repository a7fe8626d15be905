#!/usr/bin/env bash
# FHIRPath evaluations per second, courier against the reference
# implementation (npm fhirpath, run by Node) on the same resources and the
# same compiled expressions, in one run. Prints each rate and the ratio.
# Usage: bench/fhirpath_vs_reference.sh [BUILD_DIR]   (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
(cd tests/interop && [ -f node_modules/fhirpath/package.json ] || npm ci --silent --no-audit --no-fund)
large=$(mktemp --suffix=.json)
trap 'rm -f "$large" "$large.c" "$large.js"' EXIT
"$build/fhirpath_bench" --write-large "$large" > "$large.c"
node bench/fhirpath_reference.js bench/data/lab-order-message.json "$large" > "$large.js" 2> /dev/null
printf '%-12s %12s %12s %8s  %s\n' resource courier/s fhirpath.js/s ratio expression
paste "$large.c" "$large.js" | awk -F'\t' '{
  printf "%-12s %12d %12d %7.1fx  %s\n", $1, $3, $6, ($6 > 0 ? $3 / $6 : 0), $2
}'
