#!/usr/bin/env bash
# One command as a user feels it (issue 15): `vmflow status X` and
# `vmflow snapshots X` against virsh on a real libvirt domain, `vmflow list`
# against `just --list`, and a plugin's start, all measured side by side
# (bench/cmp.py: interleaved rounds, medians), printed as one table with
# the load average.
#
#   bench/commands.sh        # ROUNDS=30 WARMUP=3 by default
#
# It defines a small domain on qemu:///system (never started: a 64 MiB
# qcow2 disk in a temporary directory, with three internal snapshots),
# named perf-bench-<pid>, and removes it, its snapshots and its disk on
# exit. vmflow runs the lifecycle tasks.hcl of the repository with its
# own state and cache directories (so its caches start cold: the first
# run fills them, and the warmup rounds are not counted). Env: ROUNDS, WARMUP, VMFLOW
# (default <repo>/bin/vmflow), JUST (default ~/.local/bin/just), URI
# (default qemu:///system), OUT (default bench/results/commands.json),
# PLUGIN_BENCH=0 to skip the plugin start benchmark, BASE=path/to/vmflow
# to time another build in the same rounds (a "before" column; it uses
# the plugins beside it and cache and state directories of its own), and
# BASE_TASKS=path/to/tasks.hcl for a lifecycle that build can read (the
# one of its own tree, from before a change to the task language).
#
# Beside each goal it gives the floor vmflow's fixed choices allow on
# this machine: bench/floor/cli (a Go program that only links go-plugin,
# gRPC, hcl, cty's functions and urfave/cli) in the list rounds, and
# BenchmarkPluginStart/floor (a bare gRPC server with mutual TLS) among
# the plugin starts.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
export PATH="/usr/local/go/bin:$PATH"
ROUNDS=${ROUNDS:-30}
WARMUP=${WARMUP:-3}
VMFLOW=${VMFLOW:-$repo/bin/vmflow}
JUST=${JUST:-$HOME/.local/bin/just}
URI=${URI:-qemu:///system}
OUT=${OUT:-$here/results/commands.json}
VIRSH=$(command -v virsh) || { echo "commands.sh: virsh is missing" >&2; exit 1; }

[ -x "$VMFLOW" ] || make -C "$repo" build >/dev/null
[ -x "$JUST" ] || { echo "commands.sh: $JUST is missing; run bench/setup.sh" >&2; exit 1; }

"$VIRSH" -q -c "$URI" version >/dev/null || { echo "commands.sh: cannot reach libvirtd at $URI (scripts/services.sh starts it)" >&2; exit 1; }
name=perf-bench-$$
work=$(mktemp -d /tmp/vmflow-bench.XXXXXX)
disk=$work/$name.qcow2
cleanup() {
  if "$VIRSH" -c "$URI" dominfo "$name" >/dev/null 2>&1; then
    "$VIRSH" -q -c "$URI" undefine "$name" --snapshots-metadata >/dev/null || true
  fi
  rm -f "$disk"
  rm -rf "$work"
}
trap cleanup EXIT

floor=$work/floor-cli
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -tags grpcnotrace,urfave_cli_no_docs -ldflags '-s -w' -o "$floor" ./bench/floor/cli)
qemu-img create -q -f qcow2 "$disk" 64M
"$VIRSH" -q -c "$URI" define /dev/stdin >/dev/null <<XML
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$disk'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
XML
for s in s1 s2 s3; do "$VIRSH" -q -c "$URI" snapshot-create-as "$name" "$s" >/dev/null; done

export XDG_CACHE_HOME=$work/cache VMFLOW_STATE_DIR=$work/state
export VMFLOW_VAR_uri=$URI
vm="$VMFLOW -f $repo/tasks.hcl"
# Each must work before it is timed.
$vm status "$name" | grep -q 'state = "shut off"' || { echo "commands.sh: vmflow status failed:" >&2; $vm status "$name" >&2; exit 1; }
$vm snapshots "$name" | grep -q '"s3"' || { echo "commands.sh: vmflow snapshots failed" >&2; exit 1; }

mkdir -p "$(dirname "$OUT")"
echo "vmflow: $("$VMFLOW" version 2>/dev/null || echo '?')  sha256 $(sha256sum "$VMFLOW" | cut -c1-12); $("$JUST" --version); $("$VIRSH" --version | sed 's/^/virsh /')"
echo "$(nproc) cores; domain $name on $URI"
echo
base_lv=() base_ls=()
if [ -n "${BASE:-}" ]; then
  # The other build keeps its own caches and state: two builds sharing
  # them would each find the other's entries.
  bvm="/usr/bin/env XDG_CACHE_HOME=$work/cache-base VMFLOW_STATE_DIR=$work/state-base $BASE -f ${BASE_TASKS:-$repo/tasks.hcl}"
  base_lv=("status-base=$bvm status $name" "snapshots-base=$bvm snapshots $name")
  base_ls=("list-base=/usr/bin/env XDG_CACHE_HOME=$work/cache-base $BASE -f tasks.hcl list")
  echo "before: $("$BASE" version 2>/dev/null || echo '?')  sha256 $(sha256sum "$BASE" | cut -c1-12)"
fi
python3 "$here/cmp.py" -n "$ROUNDS" -w "$WARMUP" --json "${OUT%.json}-libvirt.json" \
  --ratio status=domstate --ratio snapshots=snapshot-list \
  "status=$vm status $name" \
  "domstate=$VIRSH -c $URI domstate $name" \
  "snapshots=$vm snapshots $name" \
  "snapshot-list=$VIRSH -c $URI snapshot-list $name --name" \
  "${base_lv[@]}"
echo
cd "$here/testdata"
python3 "$here/cmp.py" -n $((ROUNDS * 5)) -w "$WARMUP" --json "${OUT%.json}-list.json" --ratio list=just --ratio floor=just \
  "list=$VMFLOW -f tasks.hcl list" "just=$JUST --justfile justfile --list" "floor=$floor" "${base_ls[@]}"
cd "$repo"
if [ "${PLUGIN_BENCH:-1}" != 0 ]; then
  echo
  echo "plugin start + handshake + describe (go test -bench 'PluginStart\$' ./bench), load $(cut -d' ' -f1-3 /proc/loadavg):"
  go test -run '^$' -bench 'PluginStart$' -benchtime 20x -count 3 ./bench | tee "$work/plugin.txt" | grep -E '^Benchmark' || true
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
for f in "${OUT%.json}-libvirt.json" "${OUT%.json}-list.json"; do cp "$f" "${f%.json}-$stamp.json"; done
python3 - "${OUT%.json}-libvirt.json" "${OUT%.json}-list.json" "$work/plugin.txt" <<'EOF'
import json, re, statistics, sys
lv, ls = (json.load(open(p)) for p in sys.argv[1:3])
def med(d, n): return d["commands"][n]["median_ms"]
def cpu(d, n): return statistics.median(d["commands"][n]["cpu_ms"])
def base(d, n):
    c = d["commands"].get(n + "-base")
    return c["median_ms"] if c else None
rows = [
    ("vmflow status X", "status", lv, "virsh domstate X", "domstate", 1.5),
    ("vmflow snapshots X", "snapshots", lv, "virsh snapshot-list X --name", "snapshot-list", 1.5),
    ("vmflow list (bench/testdata)", "list", ls, "just --list", "just", 1.5),
]
floor_row = ("floor: bench/floor/cli (links vmflow's fixed libraries, does nothing)", "floor", ls, "just --list", "just", 1.5)
before = base(lv, "status") is not None
print()
# Wall-time medians are what a user feels; on a machine other work keeps
# busy they swing with it, so the ratio of CPU times (the command and its
# children: vmflow with its plugin, virsh) is printed beside them.
if before:
    print("| work | before ms | ratio | vmflow ms | yardstick | ms | ratio | cpu ratio (before) | goal |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
else:
    print("| work | vmflow ms | yardstick | ms | ratio | cpu ratio | goal |")
    print("|---|---:|---|---:|---:|---:|---:|")
for w, n, d, y, yn, g in rows:
    a, b = med(d, n), med(d, yn)
    cr = cpu(d, n) / cpu(d, yn)
    if before:
        o = base(d, n)
        ocr = cpu(d, n + "-base") / cpu(d, yn)
        print(f"| {w} | {o:.1f} | {o / b:.2f}x | {a:.1f} | {y} | {b:.1f} | {a / b:.2f}x | {cr:.2f}x ({ocr:.2f}x) | ≤ {g}x |")
    else:
        print(f"| {w} | {a:.1f} | {y} | {b:.1f} | {a / b:.2f}x | {cr:.2f}x | ≤ {g}x |")
w, n, d, y, yn, g = floor_row
a, b = med(d, n), med(d, yn)
cells = "| | " if before else ""
print(f"| {w} | {cells}{a:.1f} | {y} | {b:.1f} | {a / b:.2f}x | {cpu(d, n) / cpu(d, yn):.2f}x | |")
try:
    starts = {}
    for line in open(sys.argv[3]):
        m = re.match(r"BenchmarkPluginStart/(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op", line)
        if m:
            starts.setdefault(m.group(1), []).append(float(m.group(3)) / 1e6)
    for p, v in sorted(starts.items()):
        cells = "| | " if before else ""
        print(f"| plugin start: {p} | {cells}{statistics.median(v):.1f} | — | | | | ≤ 15 ms |")
except OSError:
    pass
print()
print(f"load average: libvirt rounds {lv['load_before']} → {lv['load_after']}; list rounds {ls['load_before']} → {ls['load_after']}")
EOF
