#!/usr/bin/env python3
"""Judge policies against the reference autoscalers on every trace, never on one.

usage: scripts/judge.py [--bin PATH] [--traces DIR] [--policies DIR ...] [--days N]
                        [--half all|first|second] [--real-only]

Builds the real traces (shared/traces/make_traces.py) into DIR if they are not there,
replays each policy directory with `simulate --reference all --json` on (a) each real
trace over its own range (one proxy per run: a trace that ended is not held at its last
capacity while the longer ones go on) and (b) the bundled synthetic trace, and prints per
source and pooled over both: under-provisioned % of steps, Mbps·h against the oracle,
changes per proxy-day and flaps (reversals within 30 min), for the policy and for HPA,
AWS and Autopilot. Pooled rows add the figures (steps, footprints, changes and
proxy-days summed). `--half first|second` replays the first or second half of each real
trace (split at its own midpoint): tune on one half, judge on the other.
"""
import argparse, concurrent.futures, csv, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(binary, policies, source_args):
    cmd = [binary, "simulate", "--policies", policies, "--reference", "all", "--json"] + source_args
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    doc = json.loads(out)
    rows = {"policy": doc["summary"]}
    rows.update(doc.get("reference", {}))
    return rows


def figures(s):
    return {
        "steps": s["steps"],
        "under": s["under_provisioned_pct"] * s["steps"] / 100.0,
        "mbps_h": s["footprint_mbps_hours"],
        "oracle": s["baselines"]["oracle"]["footprint_mbps_hours"],
        "changes": s["changes"],
        "days": s["proxy_days"],
        "flaps": s["flapping"],
    }


def add(a, b):
    return {k: a.get(k, 0) + b[k] for k in b}


def line(name, f):
    under = 100.0 * f["under"] / f["steps"] if f["steps"] else 0.0
    ratio = f["mbps_h"] / f["oracle"] if f["oracle"] else 0.0
    per_day = f["changes"] / f["days"] if f["days"] else 0.0
    return f"  {name:<10} {under:7.3f} %  {ratio:6.3f}×  {per_day:7.2f}/day  {f['flaps']:7d} flaps"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "gaap-autoscaler"))
    ap.add_argument("--traces", default="/tmp/gaap-traces")
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--policies", action="append")
    ap.add_argument("--days", default="7", help="days of the synthetic trace")
    ap.add_argument("--half", choices=["all", "first", "second"], default="all",
                    help="replay this half of each real trace (split at its own midpoint)")
    ap.add_argument("--real-only", action="store_true", help="skip the synthetic trace")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.traces, "all.csv")):
        subprocess.run([sys.executable, os.path.join(a.shared, "traces", "make_traces.py"), a.traces],
                       check=True, stdout=subprocess.DEVNULL)
    traces = sorted(f for f in os.listdir(a.traces) if f.startswith("link-") and f.endswith(".csv"))
    fleet = open(os.path.join(a.traces, "fleet.toml")).read()
    head, *blocks = fleet.split("[[proxy]]")
    real = []
    for name in traces:
        pid = name[:-4]
        block = next(b for b in blocks if f'id = "{pid}"' in b)
        one = os.path.join(a.traces, f"fleet-{pid}.toml")
        text = head + "[[proxy]]" + block
        if not os.path.exists(one) or open(one).read() != text:
            tmp = f"{one}.{os.getpid()}"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, one)  # judges running side by side never read half a file
        path = os.path.join(a.traces, name)
        args = ["--metrics", path, "--fleet", one]
        if a.half != "all":
            with open(path) as f:
                times = [int(r["timestamp"]) for r in csv.DictReader(f)]
            mid = (min(times) + max(times)) // 2 // 60 * 60
            args += ["--end", str(mid - 60)] if a.half == "first" else ["--start", str(mid)]
        real.append(args)
    sources = {"real": real, "synthetic": [["--synthetic", "--days", a.days]]}
    if a.real_only:
        del sources["synthetic"]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
    for pol in a.policies or [os.path.join(ROOT, "policies")]:
        print(f"policies: {pol}")
        pooled = {}
        for name, runs in sources.items():
            summed = {}
            for rows in pool.map(lambda args: run(a.bin, pol, args), runs):
                for who, s in rows.items():
                    summed[who] = add(summed.get(who, {}), figures(s))
            print(f" {name}:")
            for who, f in summed.items():
                print(line(who, f))
                pooled[who] = add(pooled.get(who, {}), f)
        print(" pooled:")
        for who, f in pooled.items():
            print(line(who, f))
        ap_ = pooled.get("autopilot")
        if ap_:
            p = pooled["policy"]
            goals = [
                ("under ≤ 0.8× autopilot", p["under"] / p["steps"] <= 0.8 * ap_["under"] / ap_["steps"]),
                ("Mbps·h ≤ 0.9× autopilot", p["mbps_h"] <= 0.9 * ap_["mbps_h"]),
                ("changes ≤ autopilot", p["changes"] / p["days"] <= ap_["changes"] / ap_["days"]),
                ("flaps ≤ autopilot", p["flaps"] <= ap_["flaps"]),
            ]
            print("  goals: " + ", ".join(f"{g}: {'yes' if ok else 'NO'}" for g, ok in goals))
        print()


if __name__ == "__main__":
    main()
