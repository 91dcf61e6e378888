#!/usr/bin/env python3
"""Median wall times and ratios of several bench/libvirt/run.sh results, one
row per JSON (bench/cmp.py's, or hyperfine's from before run.sh used
cmp.py), and the median of each column over the rows.

    python3 bench/libvirt/summary.py bench/results/libvirt-2*.json
"""
import json
import statistics
import sys

NAMES = ("vmflow", "vmflow-p1", "bash", "raw", "floor")


def medians(path):
    doc = json.load(open(path))
    if "commands" in doc:  # cmp.py
        return {n: c["median_ms"] for n, c in doc["commands"].items()}, doc.get("rounds"), doc.get("load_before", "")
    res = {r["command"]: r for r in doc["results"]}  # hyperfine
    return {n: statistics.median(r["times"]) * 1000 for n, r in res.items()}, len(res["raw"]["times"]), ""


rows = []
for path in sys.argv[1:]:
    m, n, load = medians(path)
    if not all(k in m for k in ("vmflow", "vmflow-p1", "raw")):
        continue
    rows.append((path.rsplit("/", 1)[-1], n, load, m))

nan = float("nan")
print("| run | rounds | load | vmflow p4 | vmflow p1 | bash | raw | floor | p4/floor | p1/floor | p4/raw | p1/raw |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
cols = {}
for name, n, load, m in rows:
    g = lambda k: m.get(k, nan)
    r = {"p4f": g("vmflow") / g("floor"), "p1f": g("vmflow-p1") / g("floor"),
         "p4r": g("vmflow") / g("raw"), "p1r": g("vmflow-p1") / g("raw")}
    for k in NAMES:
        cols.setdefault(k, []).append(g(k))
    for k, v in r.items():
        cols.setdefault(k, []).append(v)
    print(f"| {name} | {n} | {load} | {g('vmflow'):.0f} | {g('vmflow-p1'):.0f} | {g('bash'):.0f} | {g('raw'):.0f} | {g('floor'):.0f} |"
          f" {r['p4f']:.2f}x | {r['p1f']:.2f}x | {r['p4r']:.2f}x | {r['p1r']:.2f}x |")
if rows:
    md = {k: statistics.median(v) for k, v in cols.items()}
    print(f"| median of the {len(rows)} | | | {md['vmflow']:.0f} | {md['vmflow-p1']:.0f} | {md['bash']:.0f} | {md['raw']:.0f} | {md['floor']:.0f} |"
          f" {md['p4f']:.2f}x | {md['p1f']:.2f}x | {md['p4r']:.2f}x | {md['p1r']:.2f}x |")
