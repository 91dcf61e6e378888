#!/usr/bin/env bash
# Time `vmflow list` against `just --list` and `task --list` on the same 20
# tasks (bench/testdata), in one hyperfine invocation, and print the median
# wall times and the ratios computed from hyperfine's JSON.
#
#   bench/setup.sh         # once: installs just, task, hyperfine
#   bench/list.sh          # RUNS=200 WARMUP=10 by default
#
# Env: RUNS, WARMUP, VMFLOW (default <repo>/bin/vmflow, built with
# `make build` if missing), JUST, TASK (default ~/.local/bin/{just,task}
# from setup.sh), OUT (default bench/results/list.json; a timestamped copy
# is kept beside it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-200}
WARMUP=${WARMUP:-10}
VMFLOW=${VMFLOW:-$repo/bin/vmflow}
JUST=${JUST:-$HOME/.local/bin/just}
TASK=${TASK:-$HOME/.local/bin/task}
OUT=${OUT:-$here/results/list.json}

if [ ! -x "$VMFLOW" ] && [ "$VMFLOW" = "$repo/bin/vmflow" ]; then
  make -C "$repo" build >/dev/null
fi
for t in "$VMFLOW" "$JUST" "$TASK"; do
  [ -x "$t" ] || { echo "list.sh: $t is missing; run bench/setup.sh (and make build)" >&2; exit 1; }
done
command -v hyperfine >/dev/null || { echo "list.sh: hyperfine is missing; run bench/setup.sh" >&2; exit 1; }
# The npm wrapper for just is a Node script; timing it would time Node.
if head -c 2 "$(readlink -f "$JUST")" | grep -q '#!'; then
  echo "list.sh: $JUST is a script, not the native just binary; run bench/setup.sh" >&2; exit 1
fi

cd "$here/testdata"
# Absolute paths, no shell: hyperfine -N execs these directly.
cmd_vmflow="$VMFLOW -f tasks.hcl list"
cmd_just="$JUST --justfile justfile --list"
cmd_task="$TASK --taskfile Taskfile.yml --list"

# Each must succeed and list all 20 tasks before it is timed.
for c in "$cmd_vmflow" "$cmd_just" "$cmd_task"; do
  n=$($c 2>&1 | grep -cE '(set-memory|restore-snapshot|list-vms)') || true
  if [ "$n" != 3 ]; then
    echo "list.sh: '$c' did not list the tasks:" >&2; $c >&2 || true; exit 1
  fi
done

mkdir -p "$(dirname "$OUT")"
echo "vmflow: $("$VMFLOW" version 2>/dev/null || echo '?')  sha256 $(sha256sum "$VMFLOW" | cut -c1-12)"
echo "just:   $("$JUST" --version)   task: $("$TASK" --version)   $(hyperfine --version)"
echo "runs=$RUNS warmup=$WARMUP, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo

hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --style basic \
  --export-json "$OUT" \
  -n vmflow "$cmd_vmflow" \
  -n just "$cmd_just" \
  -n task "$cmd_task"

cp "$OUT" "${OUT%.json}-$(date -u +%Y%m%dT%H%M%SZ).json"

python3 - "$OUT" <<'EOF'
import json, statistics, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
ms = lambda s: s * 1000.0
print()
print(f"{'command':<8} {'median ms':>10} {'mean ms':>9} {'stddev':>8} {'min ms':>8} {'max ms':>8} {'runs':>5}")
for name in ("vmflow", "just", "task"):
    r = res[name]
    t = r["times"]
    print(f"{name:<8} {ms(statistics.median(t)):>10.2f} {ms(r['mean']):>9.2f} {ms(r['stddev'] or 0):>8.2f}"
          f" {ms(min(t)):>8.2f} {ms(max(t)):>8.2f} {len(t):>5}")
med = {n: statistics.median(res[n]["times"]) for n in res}
print()
print(f"median ratio vmflow/just = {med['vmflow'] / med['just']:.1f}x")
print(f"median ratio vmflow/task = {med['vmflow'] / med['task']:.2f}x")
EOF
