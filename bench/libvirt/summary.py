#!/usr/bin/env python3
"""Median wall times and ratios of several bench/libvirt/run.sh results, one
row per hyperfine JSON, and the median of each column over the rows.

    python3 bench/libvirt/summary.py bench/results/libvirt-2*.json
"""
import json
import statistics
import sys

NAMES = ("vmflow", "vmflow-p1", "bash", "raw")
rows = []
for path in sys.argv[1:]:
    res = {r["command"]: r for r in json.load(open(path))["results"]}
    if not all(n in res for n in NAMES):
        continue
    m = {n: statistics.median(res[n]["times"]) * 1000 for n in NAMES}
    rows.append((path.rsplit("/", 1)[-1], len(res["raw"]["times"]), m))

print(f"| run | runs | vmflow (a, p4) | vmflow-p1 (a, p1) | bash (b) | raw (c) | a/c p4 | a/c p1 | b/c |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
cols = {k: [] for k in NAMES + ("r4", "r1", "rb")}
for name, n, m in rows:
    r4, r1, rb = m["vmflow"] / m["raw"], m["vmflow-p1"] / m["raw"], m["bash"] / m["raw"]
    for k in NAMES:
        cols[k].append(m[k])
    cols["r4"].append(r4)
    cols["r1"].append(r1)
    cols["rb"].append(rb)
    print(f"| {name} | {n} | {m['vmflow']:.0f} | {m['vmflow-p1']:.0f} | {m['bash']:.0f} | {m['raw']:.0f} | {r4:.2f}x | {r1:.2f}x | {rb:.2f}x |")
md = {k: statistics.median(v) for k, v in cols.items() if v}
if md:
    print(f"| median of the {len(rows)} | | {md['vmflow']:.0f} | {md['vmflow-p1']:.0f} | {md['bash']:.0f} | {md['raw']:.0f} |"
          f" {md['r4']:.2f}x | {md['r1']:.2f}x | {md['rb']:.2f}x |")
