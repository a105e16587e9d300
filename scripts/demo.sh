#!/usr/bin/env bash
# See the daemon work on one machine, with nothing but this repository, Prometheus and
# promtool: a synthetic trace around "now" exported as OpenMetrics, backfilled into a real
# Prometheus, the sandbox as the GAAP API, and the daemon running the bundled policies
# against both, on free loopback ports. Shows `log list` as decisions are made and applied,
# then stops everything it started (also on Ctrl-C) and prints what the sandbox applied.
#
# Usage: scripts/demo.sh                 (about 2 minutes; DEMO_DURATION=SECONDS to change)
# Needs: prometheus and promtool (Debian: apt-get install prometheus), python3 (free
# ports), curl, and the gaap-autoscaler binary (on PATH, in target/, or GAAP_AUTOSCALER=PATH).
# Installs nothing. Exit 0 when at least one change was applied at the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DURATION=${DEMO_DURATION:-120}

missing=0
for tool in prometheus promtool python3 curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "demo: $tool not found." >&2
    missing=1
  fi
done
if [ "$missing" = 1 ]; then
  echo "demo: install them first, e.g. on Debian: apt-get install -y --no-install-recommends prometheus python3 curl" >&2
  exit 2
fi
BIN=${GAAP_AUTOSCALER:-}
if [ -z "$BIN" ]; then
  if [ -x target/release/gaap-autoscaler ]; then BIN=$REPO/target/release/gaap-autoscaler
  elif [ -x target/debug/gaap-autoscaler ]; then BIN=$REPO/target/debug/gaap-autoscaler
  elif command -v gaap-autoscaler >/dev/null 2>&1; then BIN=$(command -v gaap-autoscaler)
  else
    echo "demo: no gaap-autoscaler binary: run \`cargo build --release\` (or \`cargo install --path .\`), or set GAAP_AUTOSCALER" >&2
    exit 2
  fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gaap-demo.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "${DEMO_KEEP:-}" ]; then echo "demo: files kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL, what
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "demo: $2 did not come up ($1); its log: $WORK/$3" >&2
  tail -20 "$WORK/$3" >&2 || true
  exit 2
}

echo "== 1. a synthetic trace around now, as OpenMetrics (simulate --export-openmetrics)"
# The synthetic day's cycle follows the clock (quiet at night UTC), so move the exported
# samples in time until its busiest minute for link-kicu7m5b comes two minutes from now:
# the demand climbs while the daemon watches, and it scales up live.
now=$(date +%s)
"$BIN" simulate --days 2 --start $(( (now - 86400) / 86400 * 86400 )) \
  --export-openmetrics "$WORK/day.om" --json >/dev/null
python3 - "$WORK/day.om" "$WORK/trace.om" "$now" <<'PY'
import sys
src, dst, now = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(src).read().splitlines()
peak = max(
    (float(v), int(float(t)))
    for l in lines if l.startswith('qce_qaap_outbandwidth_max{channel_id="link-kicu7m5b"}')
    for _, v, t in [l.rsplit(" ", 2)] if v != "NaN" and int(float(t)) <= now
)[1]
shift = (now + 120 - peak) // 60 * 60
with open(dst, "w") as out:
    for l in lines:
        if l.startswith("#"):
            out.write(l + "\n")
        else:
            head, t = l.rsplit(" ", 1)
            out.write("%s %d\n" % (head, int(float(t)) + shift))
PY
echo "   $(grep -vc '^#' "$WORK/trace.om") samples in $WORK/trace.om"

echo "== 2. backfill a real Prometheus (promtool tsdb create-blocks-from openmetrics)"
promtool tsdb create-blocks-from openmetrics "$WORK/trace.om" "$WORK/prom-data" >/dev/null
PROM_PORT=$(free_port)
: > "$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom-data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --storage.tsdb.retention.time=30d \
  >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$PROM_PORT/-/ready" Prometheus prometheus.log
echo "   Prometheus on http://127.0.0.1:$PROM_PORT"

echo "== 3. the sandbox (a local GAAP API, the bundled fleet)"
SECRET_ID=AKIDdemo0000000000000000000000000
SECRET_KEY=demoSecretKey00000000000000000000
"$BIN" sandbox --listen 127.0.0.1:0 --secret-id "$SECRET_ID" --secret-key "$SECRET_KEY" \
  --adjusting 10s >"$WORK/sandbox.out" 2>"$WORK/sandbox.log" &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q 'listening on' "$WORK/sandbox.out" 2>/dev/null && break; sleep 0.1; done
SANDBOX=$(sed -n 's/^sandbox listening on //p' "$WORK/sandbox.out" | sed -n 1p)
[ -n "$SANDBOX" ] || { echo "demo: the sandbox did not start:" >&2; cat "$WORK/sandbox.log" >&2; exit 2; }
echo "   sandbox on $SANDBOX"

echo "== 4. the daemon: bundled policies (policies/), this Prometheus, this sandbox"
LISTEN_PORT=$(free_port)
cat >"$WORK/gaap-autoscaler.toml" <<EOF
[tencentcloud]
endpoint = "$SANDBOX"
[prometheus]
url = "http://127.0.0.1:$PROM_PORT"
[engine]
policies = "$REPO/policies"
data_dir = "data"
listen = "127.0.0.1:$LISTEN_PORT"
EOF
TENCENTCLOUD_SECRET_ID=$SECRET_ID TENCENTCLOUD_SECRET_KEY=$SECRET_KEY \
  "$BIN" run -c "$WORK/gaap-autoscaler.toml" --log info >"$WORK/daemon.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$LISTEN_PORT/healthz" "the daemon" daemon.log
echo "   daemon on http://127.0.0.1:$LISTEN_PORT (config $WORK/gaap-autoscaler.toml)"

echo "== 5. decisions as they are made (log list, every 15 s for ${DURATION} s)"
end=$(( $(date +%s) + DURATION ))
while :; do
  echo "--- $(date -u +%H:%M:%S) log list -c gaap-autoscaler.toml --since 10m --limit 8"
  "$BIN" log list -c "$WORK/gaap-autoscaler.toml" --since 10m --limit 8 || true
  [ "$(date +%s)" -lt "$end" ] || break
  sleep 15
done

echo "== 6. what the sandbox applied"
applied=$(curl -fsS "$SANDBOX/__sandbox/calls" | python3 -c '
import json, sys
calls = json.load(sys.stdin)
done = [c for c in calls if c["action"] == "ModifyProxyConfiguration" and c["applied"]]
for c in done:
    p = c["params"]
    print("   applied %s %s bandwidth=%s concurrent=%s" % (c["time"], p.get("ProxyId"), p.get("Bandwidth"), p.get("Concurrent")), file=sys.stderr)
print(len(done))')
echo "demo: $applied change(s) applied at the sandbox"
[ "$applied" -ge 1 ]
