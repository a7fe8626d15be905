#!/usr/bin/env bash
# Round-trips every example of the FHIR R4 specification (npm package
# hl7.fhir.r4.examples@4.0.1, about 5,300 resources) JSON -> XML -> JSON.
# The package is fetched with npm once into CACHE; when npm cannot reach the
# registry the test is skipped (exit 77), never passed.
# Usage: all_r4_examples.sh FHIR_ROUNDTRIP_BINARY CACHE_DIR EXCLUSIONS_FILE
set -euo pipefail
roundtrip=$1 cache=$2 exclusions=$3
package="$cache/package"
if [ ! -f "$package/Bundle-types.json" ]; then
  mkdir -p "$cache"
  if ! (cd "$cache" && timeout 300 npm pack --silent hl7.fhir.r4.examples@4.0.1 > /dev/null 2>&1); then
    echo "SKIP: npm could not fetch hl7.fhir.r4.examples@4.0.1"
    exit 77
  fi
  tar -xzf "$cache/hl7.fhir.r4.examples-4.0.1.tgz" -C "$cache"
fi
exec "$roundtrip" "$package" "$exclusions"
