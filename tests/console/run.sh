#!/usr/bin/env bash
# Installs playwright-core once (pinned in package-lock.json; it drives
# Debian's /usr/bin/chromium, so no browser is downloaded), then runs the
# console's end-to-end test. Skipped (exit 77), never passed, when npm cannot
# reach the registry. Usage: run.sh PATH_TO_COURIER
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  if ! (cd "$here" && timeout 300 npm ci --silent --no-audit --no-fund > /dev/null 2>&1); then
    echo "SKIP: npm could not install playwright-core"
    exit 77
  fi
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "FAIL: /usr/bin/chromium is missing; scripts/setup.sh installs it" >&2
  exit 1
fi
exec node "$here/console_e2e.mjs" "$@"
