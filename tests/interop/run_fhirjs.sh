#!/usr/bin/env bash
# Installs FHIR.js (npm `fhir`, pinned in package-lock.json) once, then reads
# courier's XML for FOLDER's examples with it. Skipped (exit 77), never passed,
# when npm cannot reach the registry.
# Usage: run_fhirjs.sh COURIER_BINARY FOLDER
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$here/node_modules/fhir/package.json" ]; then
  if ! (cd "$here" && timeout 300 npm ci --silent --no-audit --no-fund > /dev/null 2>&1); then
    echo "SKIP: npm could not install the fhir package"
    exit 77
  fi
fi
exec node "$here/fhirjs_crosscheck.js" "$1" "$2"
