#!/usr/bin/env python3
"""Adaptive from a cold start: N first demos, each with an empty calibration directory.

Runs `hetcache bench` at the demo's sizes (`hetcache demo` writes no JSON) with a fresh
XDG_CACHE_HOME / HETCACHE_CACHE_DIR each time, so every run calibrates as on a new machine, and
prints, per cell, Adaptive's median over the best fixed strategy's median in the same run. With
two binaries, they alternate run by run (A B A B ...), so a slow spell of a shared machine hits
both alike.

    bench/cold_start.py --hetcache build/release/tools/hetcache --demos 6
    bench/cold_start.py --hetcache OLD --hetcache NEW --demos 6 --out results.md

With --warm, each binary also runs warm demos, alternated with its cold ones: a calibration
directory measured once by an untimed demo at the start and kept for every warm demo (the
demo after the first on a machine), so the cold start can be compared with the warm one.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

CPU_SIZES = "100,500,1000,2000"
IO_SIZES = "50,200,500,1000"
FIXED = ("fiber-only", "cpu-only", "gpu-only", "hybrid")
# Two fixed strategies that run the same tier in a cell: their ratio is the measurement's own
# noise, the control beside Adaptive's. Hybrid runs similarity over 2^22 multiply-adds on the TBB
# arena as cpu-only does (no GPU), and reads of 10 keys or more on fibers as fiber-only does.
SAME_TIER = {"cpu 100": "cpu-only", "cpu 500": "cpu-only", "cpu 1000": "cpu-only",
             "cpu 2000": "cpu-only", "mixed-search": "cpu-only", "io 200": "fiber-only",
             "io 500": "fiber-only", "io 1000": "fiber-only", "mixed-access": "fiber-only"}


def one_demo(binary, runs, calibrated=None):
    """One demo, cold (an empty calibration directory) or warm (the directory `calibrated`):
    ({cell: Adaptive / best fixed strategy}, {cell: control ratio}, [the cells over 1.10: where
    Adaptive ran beside every strategy's time], {I/O cell: fiber-only / cpu-only})."""
    with tempfile.TemporaryDirectory(prefix="hetcache-cold-") as tmp:
        home = calibrated or tmp
        env = dict(os.environ, XDG_CACHE_HOME=home, HETCACHE_CACHE_DIR=os.path.join(home, "cal"))
        out = os.path.join(tmp, "cells.json")
        subprocess.run([binary, "bench", "--cpu-sizes", CPU_SIZES, "--io-sizes", IO_SIZES,
                        "--runs", str(runs), "--json", out, "--db", os.path.join(tmp, "db")],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out) as f:
            cells = json.load(f)
    by_cell, ran_on = {}, {}
    for c in cells:
        name = f"{c['table']} {c['size']}" if not c["table"].startswith("mixed") else c["table"]
        by_cell.setdefault(name, {})[c["strategy"]] = c["ms"]
        if "ran_on" in c:
            ran_on[name] = c["ran_on"]
    # The mixed phases also as their sum, as the demo's table shows it.
    mixed = [by_cell[n] for n in by_cell if n.startswith("mixed")]
    by_cell["mixed total"] = {s: sum(m[s] for m in mixed) for s in mixed[0]}
    ratios, control, misses, gap = {}, {}, [], {}
    for name, ms in by_cell.items():
        if name.startswith("io "):
            gap[name] = ms["fiber-only"] / ms["cpu-only"]
        best = min(v for s, v in ms.items() if s in FIXED)
        ratios[name] = ms["adaptive"] / best
        if ratios[name] > 1.10 and name in ran_on:
            times = ", ".join(f"{s} {v:.3f}" for s, v in ms.items())
            misses.append(f"| {name} | {ratios[name]:.2f} | {times} | {ran_on[name]} |")
        if name in SAME_TIER:
            pair = (ms["hybrid"], ms[SAME_TIER[name]])
            control[name] = max(pair) / min(pair)
    return ratios, control, misses, gap


def table(title, runs_of_ratios, note="(mixed total left out of the counts)"):
    names = list(runs_of_ratios[0])
    lines = [f"### {title}", "", "| cell | runs | median | worst |", "|---|---|---|---|"]
    every = []
    for n in names:
        r = [run[n] for run in runs_of_ratios]
        every += [run[n] for run in runs_of_ratios if n != "mixed total"]
        lines.append(f"| {n} | {' '.join(f'{x:.2f}' for x in r)} | {statistics.median(r):.2f} "
                     f"| {max(r):.2f} |")
    geomean = math.exp(sum(math.log(x) for x in every) / len(every))
    over = sum(1 for x in every if x > 1.10)
    # The bar: a whole demo with every cell within 1.10x.
    whole = sum(1 for run in runs_of_ratios
                if all(x <= 1.10 for n, x in run.items() if n != "mixed total"))
    lines += ["", f"geomean {geomean:.3f}; cells > 1.10: {over} of {len(every)}; "
              f"worst {max(every):.2f} {note}; demos with every cell within 1.10: "
              f"{whole} of {len(runs_of_ratios)}", ""]
    return "\n".join(lines)


def gap_table(title, runs_of_gaps):
    """What placing an I/O cell on the other tier costs: fiber-only / cpu-only per demo."""
    lines = [f"### {title}", "", "| cell | runs | median |", "|---|---|---|"]
    for name in runs_of_gaps[0]:
        values = [g[name] for g in runs_of_gaps]
        lines.append(f"| {name} | {' '.join(f'{v:.2f}' for v in values)} | "
                     f"{statistics.median(values):.2f} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hetcache", action="append", required=True,
                   help="the hetcache command (twice: two builds alternated)")
    p.add_argument("--demos", type=int, default=6, help="cold demos per binary (default 6)")
    p.add_argument("--runs", type=int, default=5, help="--runs of each demo (default 5)")
    p.add_argument("--out", help="also write the tables to this Markdown file")
    p.add_argument("--warm", action="store_true",
                   help="also run as many warm demos per binary, alternated with the cold ones")
    a = p.parse_args()
    if not 1 <= a.demos <= 100:
        p.error(f"--demos must be in [1, 100], got {a.demos}")
    with tempfile.TemporaryDirectory(prefix="hetcache-warm-") as warm_root:
        # Each binary's warm directory, calibrated by one untimed demo of its own.
        calibrated = {}
        if a.warm:
            for n, b in enumerate(a.hetcache):
                calibrated[b] = os.path.join(warm_root, str(n))
                os.mkdir(calibrated[b])
                one_demo(b, 1, calibrated[b])
        text = sitting(a, calibrated)
    print(text)
    if a.out:
        with open(a.out + ".tmp", "w") as f:
            f.write(text)
        os.replace(a.out + ".tmp", a.out)


def sitting(a, calibrated):
    """Runs the demos, cold and (where `calibrated` names a directory) warm, alternated, and
    returns the tables."""
    kinds = [(b, None, b) for b in a.hetcache]
    if calibrated:
        kinds = [k for b in a.hetcache
                 for k in ((b, None, f"{b} cold"), (b, calibrated[b], f"{b} warm"))]
    results = {name: [] for _, _, name in kinds}
    controls = {name: [] for _, _, name in kinds}
    misses = {name: [] for _, _, name in kinds}
    gaps = {name: [] for _, _, name in kinds}
    for i in range(a.demos):
        for b, cal, name in kinds:
            ratios, control, missed, gap = one_demo(b, a.runs, cal)
            gaps[name].append(gap)
            results[name].append(ratios)
            controls[name].append(control)
            misses[name] += [f"| {i + 1} " + m for m in missed]
            print(f"demo {i + 1}/{a.demos} {name}: worst {max(ratios.values()):.2f}",
                  file=sys.stderr)
    text = "\n".join(
        table(f"{b}: adaptive / best fixed strategy", results[b]) + "\n" +
        table(f"{b}, control: hybrid vs the fixed strategy on its tier (larger / smaller)",
              controls[b], note="(the noise of the measurement itself)") + "\n" +
        gap_table(f"{b}: the two I/O tiers, fiber-only / cpu-only", gaps[b]) + "\n" +
        f"### {b}: cells over 1.10, where Adaptive ran (ms per strategy)\n\n"
        "| demo | cell | ratio | ms | adaptive ran on |\n|---|---|---|---|---|\n" +
        "\n".join(misses[b]) + "\n"
        for b in results)
    return text


if __name__ == "__main__":
    main()
