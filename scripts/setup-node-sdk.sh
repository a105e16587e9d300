#!/usr/bin/env bash
# Installs the official Tencent Cloud Node.js SDK (tencentcloud-sdk-nodejs, the version pinned
# in tests/node/package-lock.json) into tests/node/node_modules, for the sandbox conformance
# test (tests/sandbox_node_sdk.rs runs tests/node/sdk_check.js with it). Node and npm come
# from Debian (`apt-get install nodejs npm`); this script installs nothing else silently.
# Usage: scripts/setup-node-sdk.sh            (idempotent; a second run is quick)
set -euo pipefail
cd "$(dirname "$0")/../tests/node"
for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "error: $tool not found: apt-get install -y nodejs npm" >&2
    exit 2
  }
done
if node -e 'require("tencentcloud-sdk-nodejs/tencentcloud/services/gaap/v20180529/gaap_client")' >/dev/null 2>&1 \
   && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "node SDK already installed in tests/node/node_modules"
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
node -e 'console.log("node SDK " + require("tencentcloud-sdk-nodejs/tencentcloud/common/sdk_version").sdkVersion + " installed in tests/node/node_modules")'
