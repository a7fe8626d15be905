#!/usr/bin/env bash
# Installs the interop tests' npm packages once (pinned in package-lock.json:
# FHIR.js, the reference fhirpath, fhir-kit-client and simple-hl7), then runs one of the checks here.
# Skipped (exit 77), never passed, when npm cannot reach the registry.
# Usage: run_node_check.sh SCRIPT.js ARGS...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$here/node_modules/fhir/package.json" ] || [ ! -f "$here/node_modules/fhirpath/package.json" ] ||
   [ ! -f "$here/node_modules/fhir-kit-client/package.json" ] ||
   [ ! -f "$here/node_modules/simple-hl7/package.json" ]; then
  if ! (cd "$here" && timeout 300 npm ci --silent --no-audit --no-fund > /dev/null 2>&1); then
    echo "SKIP: npm could not install the interop test packages"
    exit 77
  fi
fi
script=$1
shift
exec node "$here/$script" "$@"
