#!/usr/bin/env bash
# Installs the official Tencent Cloud Python SDK (common + gaap) into target/pyenv, for the
# sandbox conformance test (tests/sandbox_sdk.rs runs tests/python/sdk_check.py with it).
# Usage: scripts/setup-python-sdk.sh            (idempotent; a second run is quick)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/pyenv
COMMON_VERSION=3.1.195
GAAP_VERSION=3.1.33
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if "$VENV/bin/python" -c 'import tencentcloud.gaap.v20180529.gaap_client, tencentcloud.common' >/dev/null 2>&1; then
  echo "python SDK already installed in $VENV"
  exit 0
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  "tencentcloud-sdk-python-common==$COMMON_VERSION" \
  "tencentcloud-sdk-python-gaap==$GAAP_VERSION"
"$VENV/bin/python" -c 'import tencentcloud.gaap.v20180529.gaap_client' 
echo "python SDK installed in $VENV"
