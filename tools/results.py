#!/usr/bin/env python3
"""Reproduces the simulator figures of docs/results.md.

Runs the release `dvms-sim` on each configuration and prints Markdown tables with the exact
commands. Usage: `tools/results.py [--quick]` (`--quick` skips the 50k and 100k-host runs).
Needs python3 (standard on Debian) and the Rust toolchain.
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACES = os.path.join(os.path.dirname(ROOT), "shared", "traces", "planetlab", "20110303")


def sim_binary():
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "dvms-sim"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "dvms-sim")


def run(binary, args):
    cmd = [binary, "run", "--report", "json"] + args
    started = time.time()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
    report = json.loads(proc.stdout)
    report["_rss_mib"] = int(proc.stderr.strip().splitlines()[-1]) / 1024
    report["_elapsed"] = time.time() - started
    report["_cmd"] = "dvms-sim run " + " ".join(args)
    return report


def row(r, extra=()):
    d, s = r["time_to_decide_s"], r["time_to_solve_s"]
    cells = [
        f"`{r['_cmd']}`",
        r["scheduler"],
        f"{r['hosts']:,}",
        f"{r['cumulated_violation_s']:,.0f}",
        str(r["events_started"]),
        f"{d['p50']:.3f} / {d['p99']:.3f}",
        f"{s['p50']:.1f} / {s['p99']:.1f}",
        f"{r['partition_size']['mean']:.2f} / {r['partition_size']['max']}",
        str(r["migrations"]),
        str(r["messages_sent"]),
        str(r["invariant_violations"]),
        f"{r['wall_s']:.1f}",
        f"{r['_rss_mib']:.0f}",
    ]
    return "| " + " | ".join(cells + list(extra)) + " |"


HEADER = (
    "| command | scheduler | hosts | overload (host-s) | events | decide p50/p99 (s) "
    "| solve p50/p99 (s) | partition mean/max | migrations | messages | invariant violations "
    "| wall (s) | RSS (MiB) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main():
    quick = "--quick" in sys.argv
    binary = sim_binary()
    print("### Schedulers at 1,000 and 10,000 hosts (vmplaces, 1 h, seed 1)\n")
    print(HEADER)
    by = {}
    for hosts in (1000, 10000):
        for sched in ("dvms", "centralized", "oracle", "none"):
            r = run(binary, ["--hosts", str(hosts), "--duration", "1h", "--scheduler", sched])
            by[(hosts, sched)] = r
            print(row(r), flush=True)
    print()
    for hosts in (1000, 10000):
        dv = by[(hosts, "dvms")]["cumulated_violation_s"]
        print(
            f"- {hosts:,} hosts: dvms / oracle = {dv / by[(hosts, 'oracle')]['cumulated_violation_s']:.2f}, "
            f"dvms / centralized = {dv / by[(hosts, 'centralized')]['cumulated_violation_s']:.2f}, "
            f"dvms / none = {dv / by[(hosts, 'none')]['cumulated_violation_s']:.2f}"
        )
    print("\n### DVMS as the cluster grows (vmplaces, 1 h, seed 1)\n")
    print(HEADER)
    sizes = [1000, 2000, 5000, 10000, 20000] + ([] if quick else [50000, 100000])
    for hosts in sizes:
        print(row(run(binary, ["--hosts", str(hosts), "--duration", "1h"])), flush=True)
    print("\n### Sites: random vs topology-aware overlay keys (10,000 hosts, 3 sites)\n")
    head, rule = HEADER.split("\n")
    print(head + " inter-site migrations | inter-site messages |\n" + rule + "---|---|")
    for keys in ("random", "topology"):
        r = run(binary, ["--hosts", "10000", "--duration", "1h", "--sites", "3", "--keys", keys])
        share = r["inter_site_migrations"] / max(1, r["migrations"])
        print(row(r, (f"{r['inter_site_migrations']} ({share:.1%})", str(r["inter_site_messages"]))), flush=True)
    print("\n### Faults (10,000 hosts, 1 h)\n")
    print(HEADER)
    for extra in (["--loss", "0.01"], ["--crash-rate", "0.05"], ["--loss", "0.01", "--crash-rate", "0.05"]):
        print(row(run(binary, ["--hosts", "10000", "--duration", "1h", *extra])), flush=True)
    print("\n### PlanetLab replay (20110303, 20 VMs on 3-core hosts, 1,000 hosts, 24 h)\n")
    print(HEADER)
    for sched in ("dvms", "centralized", "oracle", "none"):
        args = ["--hosts", "1000", "--duration", "24h", "--vms-per-host", "20", "--host-cores", "3",
                "--workload", f"planetlab:{TRACES}", "--scheduler", sched]
        r = run(binary, args)
        r["_cmd"] = r["_cmd"].replace(TRACES, "../shared/traces/planetlab/20110303")
        print(row(r), flush=True)


if __name__ == "__main__":
    main()
