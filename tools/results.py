#!/usr/bin/env python3
"""Reproduces the simulator figures of docs/results.md.

Runs the release `dvms-sim` on each configuration and prints Markdown tables with the exact
commands. Usage: `tools/results.py [--quick] [--seed-only] [--binary PATH]` (`--quick` skips the 50k and
100k-host runs; `--seed-only` prints only the seed's comparison: dvms, entropy, centralized and
oracle at 128, 256, 512, 1,024 and 10,000 hosts, and the 100,000-host run; `--binary` runs that
`dvms-sim` instead of building one). A command that appears in two tables runs once.
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
    if "--binary" in sys.argv:
        i = sys.argv.index("--binary")
        if i + 1 >= len(sys.argv):
            sys.exit("--binary needs a path")
        return os.path.abspath(sys.argv[i + 1])
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "dvms-sim"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "dvms-sim")


CACHE = {}


def run(binary, args):
    key = tuple(args)
    if key not in CACHE:
        CACHE[key] = run_once(binary, args)
    return dict(CACHE[key])


def run_once(binary, args):
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


SEED_HEADER = (
    "| command | hosts | scheduler | overload (host-s) | vs oracle | computations | computation mean / max (s) "
    "| migrations | migration time mean / max (s) | stale candidates | invariant violations | wall (s) | RSS (MiB) |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def seed_row(r, oracle):
    c, m = r["computation_s"], r["migration_time_s"]
    stale = f"{r['candidate_stale_share']:.1%}" if r["scheduler"] == "dvms" else "-"
    cells = [
        f"`{r['_cmd']}`",
        f"{r['hosts']:,}",
        r["scheduler"],
        f"{r['cumulated_violation_s']:,.0f}",
        f"{r['cumulated_violation_s'] / max(oracle, 1e-9):.2f}x",
        str(c["count"]),
        f"{c['mean']:.3f} / {c['max']:.3f}",
        str(r["migrations"]),
        f"{m['mean']:.1f} / {m['max']:.1f}",
        stale,
        str(r["invariant_violations"]),
        f"{r['wall_s']:.1f}",
        f"{r['_rss_mib']:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def seed_comparison(binary, quick):
    """The seed's experiment (VMPlaceS workload, 10 VMs per host, 1 h) and the 10,000-host goals."""
    print("### The seed's comparison (vmplaces, 10 VMs/host, 1 h, seed 1)\n")
    print(SEED_HEADER)
    by = {}
    for hosts in (128, 256, 512, 1024, 10000):
        rows = {}
        for sched in ("oracle", "dvms", "entropy", "centralized"):
            rows[sched] = run(binary, ["--hosts", str(hosts), "--duration", "1h", "--scheduler", sched])
        by[hosts] = rows
        for sched in ("dvms", "entropy", "centralized", "oracle"):
            print(seed_row(rows[sched], rows["oracle"]["cumulated_violation_s"]), flush=True)
    print()
    for hosts, rows in by.items():
        ov = {k: v["cumulated_violation_s"] for k, v in rows.items()}
        print(
            f"- {hosts:,} hosts: dvms / oracle = {ov['dvms'] / ov['oracle']:.2f}, "
            f"entropy / dvms = {ov['entropy'] / ov['dvms']:.2f}, "
            f"centralized / dvms = {ov['centralized'] / ov['dvms']:.2f}, "
            f"migrations dvms {rows['dvms']['migrations']} vs oracle {rows['oracle']['migrations']}"
        )
    if not quick:
        r = run(binary, ["--hosts", "100000", "--duration", "1h"])
        print(f"\n- 100,000 hosts, dvms: `{r['_cmd']}`: {r['wall_s']:.0f} s wall, {r['_rss_mib']:.0f} MiB RSS, "
              f"overload {r['cumulated_violation_s']:,.0f} host-s, {r['invariant_violations']} invariant violations")


def main():
    quick = "--quick" in sys.argv
    binary = sim_binary()
    seed_comparison(binary, quick)
    if "--seed-only" in sys.argv:
        return
    print()
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
    for sched in ("dvms", "entropy", "centralized", "oracle", "none"):
        args = ["--hosts", "1000", "--duration", "24h", "--vms-per-host", "20", "--host-cores", "3",
                "--workload", f"planetlab:{TRACES}", "--scheduler", sched]
        r = run(binary, args)
        r["_cmd"] = r["_cmd"].replace(TRACES, "../shared/traces/planetlab/20110303")
        print(row(r), flush=True)


if __name__ == "__main__":
    main()
