#!/usr/bin/env python3
"""Writes a ~10 MB policy file of one hostile shape to stdout (issue 9 item 10), to time
`gaap-autoscaler validate FILE` with a release build:

    scripts/big-policy.py wrong-types > /tmp/types.toml
    time target/release/gaap-autoscaler validate /tmp/types.toml 2>/dev/null

Shapes (each entry repeated until the file reaches --mb megabytes, default 10, or
--count times; the bench's files are `--count 650000` of proxy-ids, `--count 349000` of
wrong-types and unknown-keys):
  proxy-ids       650k valid proxy ids in `proxies`
  bad-ids         650k ids that do not look like GAAP ids (a warning each)
  dup-ids         the same id 650k times (a warning each)
  wrong-types     349k `[signals.sNNNNNN] query = N` (an error and a warning each)
  unknown-keys    349k unknown top-level keys
  nested-keys     unknown keys inside [bandwidth]
  window-types    [[window]] tables whose `cron` is an integer
  time-zones      [[window]] tables with a misspelt time zone (a suggestion each)
  steps           step rules in `bandwidth.steps`, every one repeating a threshold
  valid-windows   valid [[window]] tables (no diagnostic)
  syntax          lines that are not TOML (`key = `)
"""
import argparse
import sys

TAIL = (
    'interval = "30s"\n'
    "[signals.bandwidth]\n"
    "query = 'max by (channel_id) (qce_qaap_outbandwidth_max)'\n"
    "[bandwidth]\n"
    'signal = "bandwidth"\n'
    "target_utilization = 0.7\n"
    "min = 10\n"
    "max = 500\n"
)


def head(name, ids=True):
    return f'name = "{name}"\n' + ('proxies = ["link-aaaaaaaa"]\n' if ids else "")


# shape -> (text before the entries, entry(i), text after)
SHAPES = {
    "proxy-ids": (head("ids", False) + "proxies = [", lambda i: f'"link-{i:08x}", ', "]\n" + TAIL),
    "bad-ids": (head("ids", False) + "proxies = [", lambda i: f'"proxy-{i:07x}", ', "]\n" + TAIL),
    "dup-ids": (head("ids", False) + "proxies = [", lambda i: '"link-aaaaaaaa", ', "]\n" + TAIL),
    "wrong-types": (head("types") + TAIL, lambda i: f"[signals.s{i:06}]\nquery = {i}\n", ""),
    "unknown-keys": (head("keys"), lambda i: f"unknown_key_number_{i:06} = 1\n", TAIL),
    "nested-keys": (head("nested") + TAIL, lambda i: f"unknown_key_number_{i:06} = 1\n", ""),
    "window-types": (
        head("windows") + TAIL,
        lambda i: f'[[window]]\ncron = {i}\nduration = "1h"\nbandwidth_min = 20\n',
        "",
    ),
    "time-zones": (
        head("zones") + TAIL,
        lambda i: f'[[window]]\ncron = "0 0 9 * * *"\nduration = "1h"\ntimezone = "Asia/Shangai"\nbandwidth_min = 20\n',
        "",
    ),
    "steps": (
        head("steps") + TAIL.replace("target_utilization = 0.7\n", "") + "steps = [\n",
        lambda i: "{ above = 0.9, change = 1 },\n",
        "]\n",
    ),
    "valid-windows": (
        head("valid") + TAIL,
        lambda i: f'[[window]]\ncron = "0 0 {i % 24} * * Mon-Fri"\nduration = "1h"\nbandwidth_min = 20\n',
        "",
    ),
    "syntax": (head("syntax") + TAIL, lambda i: f"key_{i} = \n", ""),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("--mb", type=float, default=10.0, help="size in MB (10^6 bytes)")
    ap.add_argument("--count", type=int, help="this many entries instead (whatever the size)")
    args = ap.parse_args()
    before, entry, after = SHAPES[args.shape]
    limit = int(args.mb * 1_000_000) - len(before) - len(after)
    parts, size, i = [], 0, 0
    while True:
        e = entry(i)
        if (i >= args.count) if args.count is not None else (size + len(e) > limit):
            break
        parts.append(e)
        size += len(e)
        i += 1
    sys.stdout.write(before + "".join(parts) + after)
    print(f"{args.shape}: {i} entries", file=sys.stderr)


if __name__ == "__main__":
    main()
