#!/usr/bin/env python3
"""Tables from what bench/libvirt/profile.sh recorded: per-operation
medians for raw, bash and vmflow, the phases of a vmflow run, and the
libvirt RPCs each plugin action makes (through rpcspy).

    python3 bench/libvirt/analyze.py bench/results/libvirt-profile
"""
import calendar
import collections
import glob
import json
import os
import re
import statistics
import sys

D = sys.argv[1] if len(sys.argv) > 1 else "bench/results/libvirt-profile"
OPS = ("overlay", "define", "undefine", "delete")
STEP_OP = {"ov": "overlay", "vm": "define", "undef": "undefine", "del": "delete"}


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def ts(s):
    """RFC 3339 with nanoseconds -> unix ns."""
    m = re.match(r"(\d+-\d+-\d+T\d+:\d+:\d+)(?:\.(\d+))?Z", s)
    secs = calendar.timegm(tuple(int(x) for x in re.split(r"[-T:]", m.group(1))) + (0, 0, 0))
    frac = (m.group(2) or "0").ljust(9, "0")[:9]
    return secs * 10**9 + int(frac)


def events(path):
    return [json.loads(l) for l in open(path) if l.strip()]


def steps_of(evs):
    """step -> (op, start ns, done ns, elapsed_ms)"""
    start, out = {}, {}
    for e in evs:
        if e["event"] == "step_started":
            start[e["step"]] = ts(e["time"])
        elif e["event"] == "step_done":
            op = STEP_OP[e["step"].split("_")[0]]
            out[e["step"]] = (op, start[e["step"]], ts(e["time"]), e.get("elapsed_ms", 0))
    return out


def run_bounds(evs):
    t = {e["event"]: ts(e["time"]) for e in evs if e["event"] in ("run_started", "run_done")}
    return t["run_started"], t["run_done"]


# --- raw -v -----------------------------------------------------------------
raw_ops = collections.defaultdict(list)
raw_loop = []
for p in sorted(glob.glob(os.path.join(D, "raw-*.txt"))):
    for line in open(p):
        m = re.match(r"(\w+)\s+(\d+)\s+([\d.]+) ms$", line.strip())
        if m and m.group(1) in OPS:
            raw_ops[m.group(1)].append(float(m.group(3)))
        m = re.search(r"iterations ([\d.]+) ms", line)
        if m:
            raw_loop.append(float(m.group(1)))

# --- bash -x with PS4='+ $EPOCHREALTIME ' -----------------------------------
bash_ops = collections.defaultdict(list)
bash_total = []
for p in sorted(glob.glob(os.path.join(D, "bash-*.trace"))):
    lines = []
    for line in open(p):
        m = re.match(r"\++ (\d+\.\d+) (.*)", line)
        if m:
            lines.append((float(m.group(1)), m.group(2)))
    if not lines:
        continue
    bash_total.append((lines[-1][0] - lines[0][0]) * 1000)
    for (t, cmd), (t2, _) in zip(lines, lines[1:]):
        op = None
        if cmd.startswith("qemu-img create"):
            op = "overlay"
        elif cmd.startswith("virsh") and " define " in cmd:
            op = "define"
        elif cmd.startswith("virsh") and " undefine " in cmd:
            op = "undefine"
        elif cmd.startswith("rm "):
            op = "delete"
        if op:
            bash_ops[op].append((t2 - t) * 1000)

# --- vmflow --json -v ----------------------------------------------------------
# (label of the interval that ENDS at the log line, the line)
LOGMARKS = [("vmflow init+parse", "configuring client automatic mTLS"),
            ("host mTLS cert", "plugin: starting plugin"),
            ("fork+exec", "plugin: plugin started"),
            ("plugin init", "configuring server automatic mTLS"),
            ("plugin mTLS cert", "plugin address"),
            ("handshake", "using plugin")]


def logtimes(path):
    """First time (unix ns, ms resolution) each LOGMARKS line appears."""
    out = {}
    if not os.path.exists(path):
        return out
    for line in open(path):
        m = re.match(r"(\d+-\d+-\d+T\d+:\d+:\d+\.\d+Z)", line)
        if not m:
            continue
        for label, needle in LOGMARKS:
            if needle in line and label not in out:
                out[label] = ts(m.group(1))
    return out


def load_vmflow(prefix, p):
    ops = collections.defaultdict(list)
    wall, startup, phase, tail, stepsum, gaps = [], [], [], [], [], []
    marks = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(D, f"{prefix}-p{p}-*.jsonl"))):
        evs = events(path)
        t0, t1 = (float(x) for x in open(path[:-len(".jsonl")] + ".time").read().split())
        t0, t1 = int(t0 * 1e9), int(t1 * 1e9)
        rs, rd = run_bounds(evs)
        st = steps_of(evs)
        wall.append((t1 - t0) / 1e6)
        startup.append((rs - t0) / 1e6)
        phase.append((rd - rs) / 1e6)
        tail.append((t1 - rd) / 1e6)
        s = sum(d - b for _, b, d, _ in st.values()) / 1e6
        stepsum.append(s)
        gaps.append((rd - rs) / 1e6 - s)
        for op, b, d, _ in st.values():
            ops[op].append((d - b) / 1e6)
        lt = logtimes(path[:-len(".jsonl")] + ".log")
        prev = t0
        for label, _ in LOGMARKS:
            if label in lt:
                marks[label].append((lt[label] - prev) / 1e6)
                prev = lt[label]
        marks["validate etc."].append((rs - prev) / 1e6)
    return dict(ops=ops, wall=wall, startup=startup, phase=phase, tail=tail,
                stepsum=stepsum, gaps=gaps, marks=marks, n=len(wall))


vm = {p: load_vmflow("ev", p) for p in (4, 1)}
hello = {p: load_vmflow("hello", p) for p in (4, 1)}

print(f"== Per operation, median ms ({vm[1]['n']} runs x 20 of each) ==")
print("vmflow: step_started -> step_done event (the plugin call over gRPC, and the journal fsync of its result);")
print("hello:  the same step on the example plugin's no-op action (vmflow's own cost per step)")
print(f"{'op':<9} {'raw':>7} {'bash':>7} {'vmflow p1':>10} {'vmflow p4':>10} {'p1 - raw':>9} {'p1 / raw':>9} {'hello p1':>9} {'hello p4':>9}")
for op in OPS:
    r, b, v1, v4 = med(raw_ops[op]), med(bash_ops[op]), med(vm[1]["ops"][op]), med(vm[4]["ops"][op])
    h1, h4 = med(hello[1]["ops"][op]), med(hello[4]["ops"][op])
    print(f"{op:<9} {r:>7.2f} {b:>7.2f} {v1:>10.2f} {v4:>10.2f} {v1 - r:>9.2f} {v1 / r:>8.1f}x {h1:>9.2f} {h4:>9.2f}")
tot = lambda d: sum(med(d[o]) for o in OPS)
r, b, v1, v4 = tot(raw_ops), tot(bash_ops), tot(vm[1]["ops"]), tot(vm[4]["ops"])
h1, h4 = tot(hello[1]["ops"]), tot(hello[4]["ops"])
print(f"{'sum':<9} {r:>7.2f} {b:>7.2f} {v1:>10.2f} {v4:>10.2f} {v1 - r:>9.2f} {v1 / r:>8.1f}x {h1:>9.2f} {h4:>9.2f}")

print()
print("== Whole runs, median ms ==")
print(f"raw: 20 iterations {med(raw_loop):.1f} (in-process loop, after connecting)   bash: first to last command {med(bash_total):.1f}")
print(f"{'vmflow':<10} {'wall':>7} {'exec->run_started':>18} {'steps phase':>12} {'sum of steps':>13} {'phase-sum':>10} {'run_done->exit':>15}")
for name, d in (("libvirt", vm), ("hello", hello)):
    for p in (4, 1):
        v = d[p]
        print(f"{name + ' p' + str(p):<10} {med(v['wall']):>7.1f} {med(v['startup']):>18.1f} {med(v['phase']):>12.1f} {med(v['stepsum']):>13.1f}"
              f" {med(v['gaps']):>10.1f} {med(v['tail']):>15.1f}")

print()
print("== Start-up, exec -> run_started, median ms of each interval (debug log, ms resolution) ==")
labels = [l for l, _ in LOGMARKS] + ["validate etc."]
print(f"{'':<10} " + " ".join(f"{l:>17}" for l in labels))
for name, d in (("libvirt", vm), ("hello", hello)):
    v = d[1]["marks"]
    print(f"{name + ' p1':<10} " + " ".join(f"{med(v[l]):>17.1f}" for l in labels))
print("(each column: the time from the previous go-plugin debug line to the next; the last one: Describe,")
print(" Configure (libvirt: connect), the 80 steps' Validate calls, the journal, up to the first step)")

# --- RPCs through the spy -----------------------------------------------------


def rpcs(label):
    p = os.path.join(D, f"rpc-{label}.jsonl")
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []


def by_step(label, evfile):
    """RPCs of each op per step: op -> list of per-step lists of (proc, ms)."""
    calls = rpcs(label)
    evs = events(os.path.join(D, evfile))
    st = steps_of(evs)
    out = collections.defaultdict(list)
    stepdur = collections.defaultdict(list)
    for name, (op, b, d, _) in st.items():
        mine = [(c["proc"], (c["reply"] - c["call"]) / 1e6) for c in calls if b <= c["call"] <= d]
        out[op].append(mine)
        stepdur[op].append((d - b) / 1e6)
    rs, _ = run_bounds(evs)
    before = [(c["proc"], (c["reply"] - c["call"]) / 1e6) for c in calls if c["call"] < rs]
    return out, stepdur, before


if rpcs("vmflow-p1"):
    out, stepdur, before = by_step("vmflow-p1", "ev-spy-p1.jsonl")
    print()
    print("== libvirt RPCs per plugin action, vmflow --parallelism 1, one run through rpcspy ==")
    if before:
        print("before the first step (configure): " + ", ".join(f"{n} {ms:.2f}" for n, ms in before))
    print(f"{'op':<9} {'step ms':>8} {'RPCs':>5} {'RPC ms':>7} {'rest ms':>8}   RPCs per step: median ms each")
    for op in OPS:
        per = out[op]
        counts = collections.Counter()
        lat = collections.defaultdict(list)
        for s_ in per:
            for name, ms in s_:
                counts[name] += 1
                lat[name].append(ms)
        nsteps = len(per)
        nrpc = med([len(s_) for s_ in per])
        rpcms = med([sum(ms for _, ms in s_) for s_ in per])
        sd = med(stepdur[op])
        detail = ", ".join(f"{n}{'' if counts[n] == nsteps else ' x%.2f' % (counts[n] / nsteps)} {med(lat[n]):.2f}"
                           for n in sorted(counts, key=lambda n: -sum(lat[n])))
        print(f"{op:<9} {sd:>8.2f} {nrpc:>5.0f} {rpcms:>7.2f} {sd - rpcms:>8.2f}   {detail}")

agg = {}
for label in ("raw", "vmflow-p1", "vmflow-p4"):
    lat = collections.defaultdict(list)
    for c in rpcs(label):
        lat[c["proc"]].append((c["reply"] - c["call"]) / 1e6)
    agg[label] = lat
if any(agg.values()):
    procs = sorted({p for l in agg.values() for p in l}, key=lambda p: -max(sum(agg[l].get(p, [])) for l in agg))
    print()
    print("== Every libvirt RPC of one run through rpcspy: count, median ms, total ms ==")
    print(f"{'procedure':<26} " + " ".join(f"{l:>24}" for l in agg))
    for p in procs:
        cells = []
        for l in agg:
            v = agg[l].get(p, [])
            cells.append(f"{len(v):>4} x {med(v):>6.2f} = {sum(v):>7.1f}" if v else f"{'-':>24}")
        print(f"{p:<26} " + " ".join(f"{c:>24}" for c in cells))
    print(f"{'all':<26} " + " ".join(f"{sum(len(v) for v in agg[l].values()):>4} calls, {sum(sum(v) for v in agg[l].values()):>8.1f} ms" .rjust(24) for l in agg))
    for label in agg:
        errs = collections.Counter(c["proc"] for c in rpcs(label) if c.get("error"))
        if errs:
            print(f"{label}: calls answered with an error: " + ", ".join(f"{p} x{n}" for p, n in errs.items()))

f = os.path.join(D, "fsync-p1.txt")
if os.path.exists(f):
    print()
    print("== fsync in one vmflow --parallelism 1 run (strace -f -c; strace slows each call) ==")
    for line in open(f):
        if "fsync" in line or "calls" in line:
            print(line.rstrip())
