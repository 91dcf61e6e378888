#!/usr/bin/env python3
"""Time commands side by side, interleaved: each round runs every command
once, in an order rotated per round, so a machine whose load changes during
the measurement slows every command alike. Prints, per command, the median
wall time, the median CPU time (user + system of the command and its
children) and the ratio of its median to a baseline's.

  cmp.py [-n ROUNDS] [-w WARMUP] [--json FILE] [--ratio NAME=BASE ...]
         [--prepare COMMAND] NAME=COMMAND ...

COMMAND is split with shlex and run without a shell; its output is
discarded and a non-zero exit stops the benchmark. --ratio NAME=BASE
prints NAME's median divided by BASE's (default: every command against the
last one). --prepare COMMAND runs (untimed, through the shell, output
shown) before every timed command; its non-zero exit stops the benchmark.
The load average (/proc/loadavg) is read before and after.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def run_once(argv, env):
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
    ]) if os.path.isabs(argv[0]) else None
    if pid is None:
        raise SystemExit(f"cmp.py: {argv[0]}: give an absolute path")
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_utime + ru.ru_stime, code


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", "--rounds", type=int, default=20)
    ap.add_argument("-w", "--warmup", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--ratio", action="append", default=[])
    ap.add_argument("--prepare")
    ap.add_argument("cmds", nargs="+")
    a = ap.parse_args()
    cmds = []
    for c in a.cmds:
        name, _, cmd = c.partition("=")
        argv = shlex.split(cmd)
        if not os.path.isabs(argv[0]):
            from shutil import which
            argv[0] = which(argv[0]) or argv[0]
        cmds.append((name, argv))
    env = dict(os.environ)
    load0 = loadavg()
    walls = {n: [] for n, _ in cmds}
    cpus = {n: [] for n, _ in cmds}
    for r in range(a.warmup + a.rounds):
        k = r % len(cmds)
        for name, argv in cmds[k:] + cmds[:k]:
            if a.prepare and subprocess.run(a.prepare, shell=True).returncode != 0:
                sys.exit(f"cmp.py: --prepare failed before {name}: {a.prepare}")
            wall, cpu, code = run_once(argv, env)
            if code != 0:
                sys.exit(f"cmp.py: {name} exited {code}: {shlex.join(argv)}")
            if r >= a.warmup:
                walls[name].append(wall * 1000)
                cpus[name].append(cpu * 1000)
    load1 = loadavg()
    med = {n: statistics.median(v) for n, v in walls.items()}
    print(f"{a.rounds} interleaved rounds (+{a.warmup} warmup); load average before {load0}, after {load1}")
    print(f"{'command':<14} {'median ms':>10} {'min ms':>8} {'cpu ms':>8}")
    for n, _ in cmds:
        print(f"{n:<14} {med[n]:>10.1f} {min(walls[n]):>8.1f} {statistics.median(cpus[n]):>8.1f}")
    ratios = []
    pairs = [r.split("=", 1) for r in a.ratio] or [(n, cmds[-1][0]) for n, _ in cmds[:-1]]
    for n, b in pairs:
        ratios.append({"name": n, "base": b, "ratio": med[n] / med[b]})
        print(f"{n} / {b}: {med[n] / med[b]:.2f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"load_before": load0, "load_after": load1, "rounds": a.rounds,
                       "commands": {n: {"argv": argv, "wall_ms": walls[n], "cpu_ms": cpus[n],
                                        "median_ms": med[n]} for n, argv in cmds},
                       "ratios": ratios}, f, indent=1)


if __name__ == "__main__":
    main()
