#!/usr/bin/env bash
# Type-checks sst.config.ts and infra/ against SST's own platform types. `sst install` writes them
# offline (it would otherwise try to download Bun and Pulumi plugins); telemetry stays off.
set -euo pipefail
cd "$(dirname "$0")/.."
export SST_NO_BUN=true SST_SKIP_DEPENDENCY_CHECK=true SST_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
if [ ! -f .sst/platform/config.d.ts ]; then
  echo "preparing SST's platform types (sst install, offline)..."
  npx sst install --stage check >/tmp/slipway-sst-install.log 2>&1 || { cat /tmp/slipway-sst-install.log >&2; exit 1; }
fi
npx tsc -p tsconfig.infra.json
