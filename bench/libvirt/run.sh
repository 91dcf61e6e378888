#!/usr/bin/env bash
# Time 20 x (overlay + define + undefine + delete) on qemu:///system, side
# by side in one run (bench/cmp.py: interleaved rounds, each command once
# per round in a rotated order), and print the median wall times and the
# ratios to the minimal floor and to the plugin's own calls:
#
#   vmflow     ONE `vmflow run bench` of tasks.hcl (80 steps through the
#              libvirt plugin, 20 independent chains, --parallelism 4)
#   vmflow-p1  the same with --parallelism 1
#   bash       virsh.sh: qemu-img create / virsh define / virsh undefine / rm
#   raw        raw/: go-libvirt on one connection, one call per operation,
#              the calls the plugin's actions make (their document, flags;
#              the overlay made with qemu-img, then a pool refresh)
#   floor      raw/ -floor: a local `qemu-img create` overlay, a minimal
#              domain document defined (no validation) and undefined over
#              one go-libvirt connection, rm: issue 15's minimal floor
#   before, before-p1, raw-before
#              with BASE=path/to/vmflow (another build, its plugins beside
#              it): vmflow and vmflow-p1 of that build, in the same rounds,
#              and raw with the calls the plugin made before issue 15
#              (StorageVolCreateXML, every define validated)
#
#   bench/libvirt/run.sh              build, set up, time, tear down
#   bench/libvirt/run.sh --setup      build and set up only (prints pool, base)
#   bench/libvirt/run.sh --teardown   remove leftovers, the base, the pool
#
# Everything happens in the libvirt plugin's pool for the state dir (pool
# vmflow-<hash>, directory /var/lib/libvirt/vmflow/<pool>); the base volume
# bench-base is made there by `vmflow run setup` before timing. cmp.py's
# --prepare is `clean.sh --strict`: before every timed command it checks
# that the previous one left no bench-vm-* domain, no bench-ov-* volume and
# no bench-ov-* file (and fails the benchmark if it did).
#
# Env: RUNS (10 rounds), WARMUP (2), BASE, BENCH_STATE_DIR (the dedicated
# vmflow state dir, default bench/results/libvirt-state), OUT (default
# bench/results/libvirt.json, cmp.py's JSON; a timestamped copy is kept
# beside it), KEEP=1 to skip the teardown.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH=/usr/local/go/bin:$PATH
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}
OUT=${OUT:-$repo/bench/results/libvirt.json}
# A state dir of its own (not $VMFLOW_STATE_DIR): the plugin's pool is
# derived from it, and the teardown removes that pool.
STATE=${BENCH_STATE_DIR:-$repo/bench/results/libvirt-state}
mkdir -p "$STATE" "$(dirname "$OUT")"
VMFLOW_STATE_DIR=$(cd "$STATE" && pwd) # the pool name hashes it
export VMFLOW_STATE_DIR
VMFLOW=$repo/bin/vmflow
RAW=$repo/bench/results/libvirt-raw
TASKS=$here/tasks.hcl
export URI=qemu:///system # for virsh.sh and clean.sh; tasks.hcl says the same

mode=all
case "${1:-}" in
  --setup) mode=setup ;;
  --teardown) mode=teardown ;;
  "") ;;
  *) echo "usage: run.sh [--setup|--teardown]" >&2; exit 2 ;;
esac

build() {
  make -C "$repo" build >/dev/null
  (cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$RAW" ./bench/libvirt/raw)
  if ! cmp -s <("$here/gen.sh" 20) "$TASKS"; then
    echo "run.sh: tasks.hcl differs from gen.sh's output; regenerating it" >&2
    "$here/gen.sh" 20 >"$TASKS"
  fi
}

vmflow() { "$VMFLOW" -f "$TASKS" "$@"; }

# quiet CMD…: runs CMD, showing its output only when it fails.
quiet() {
  local out
  out=$("$@" 2>&1) || { echo "run.sh: $* failed:" >&2; echo "$out" >&2; return 1; }
}

# setup: prints "POOL BASE_PATH" after making the base volume (and, the
# first time, the plugin's pool).
setup() {
  quiet vmflow run teardown # a base left by an interrupted run
  local base
  base=$(vmflow --json run setup | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e["event"] == "run_done":
        print(e["outputs"]["path"])')
  [ -f "$base" ] || { echo "run.sh: setup made no base volume" >&2; exit 1; }
  echo "$(basename "$(dirname "$base")") $base"
}

teardown() {
  local pool dir
  pool=$1 dir=$2
  "$here/clean.sh" "$pool" "$dir"
  quiet vmflow run teardown
  if [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    echo "run.sh: $dir still holds files; pool $pool left as it is" >&2
  elif virsh -q -c "$URI" pool-info "$pool" >/dev/null 2>&1; then
    virsh -q -c "$URI" pool-destroy "$pool" >/dev/null
    virsh -q -c "$URI" pool-delete "$pool" >/dev/null # the (empty) directory
    virsh -q -c "$URI" pool-undefine "$pool" >/dev/null
  fi
  rm -rf "$VMFLOW_STATE_DIR/runs" "$VMFLOW_STATE_DIR/locks"
  rmdir "$VMFLOW_STATE_DIR" 2>/dev/null || true
}

build
read -r pool base < <(setup) || true
[ -n "${base:-}" ] || { echo "run.sh: setup failed" >&2; exit 1; }
dir=$(dirname "$base")
if [ $mode = setup ]; then
  echo "pool $pool, base $base, state dir $VMFLOW_STATE_DIR"
  exit 0
fi
if [ $mode = teardown ]; then
  teardown "$pool" "$dir"
  echo "removed pool $pool ($dir) and $VMFLOW_STATE_DIR"
  exit 0
fi
[ "${KEEP:-}" = 1 ] || trap 'teardown "$pool" "$dir"' EXIT
"$here/clean.sh" "$pool" "$dir" # leftovers of an interrupted run

# Absolute paths, no shell: cmp.py execs these directly.
cmd_vmflow="$VMFLOW -f $TASKS run bench --kernel $base"
cmd_vmflow1="$VMFLOW --parallelism 1 -f $TASKS run bench --kernel $base"
cmd_bash="$here/virsh.sh $pool $base 20"
cmd_raw="$RAW -pool $pool -base bench-base -n 20"
cmd_floor="$RAW -floor -pool $pool -base bench-base -n 20"
prepare="$here/clean.sh --strict $pool $dir"
cmds=("vmflow=$cmd_vmflow" "vmflow-p1=$cmd_vmflow1")
ratios=(--ratio vmflow=floor --ratio vmflow-p1=floor --ratio vmflow=raw --ratio vmflow-p1=raw)
if [ -n "${BASE:-}" ]; then
  BASE=$(cd "$(dirname "$BASE")" && pwd)/$(basename "$BASE")
  cmds+=("before=$BASE -f $TASKS run bench --kernel $base" "before-p1=$BASE --parallelism 1 -f $TASKS run bench --kernel $base")
  cmds+=("raw-before=$cmd_raw -overlay pool -validate-every")
  ratios+=(--ratio before=floor --ratio before-p1=floor --ratio raw-before=floor --ratio vmflow=before --ratio vmflow-p1=before-p1)
fi
cmds+=("bash=$cmd_bash" "raw=$cmd_raw" "floor=$cmd_floor")
ratios+=(--ratio bash=floor --ratio raw=floor)

# Each must succeed and leave nothing behind before it is timed.
for c in "${cmds[@]}"; do
  c=${c#*=}
  if ! out=$($c 2>&1); then
    echo "run.sh: '$c' failed:" >&2; echo "$out" >&2; exit 1
  fi
  $prepare || { echo "run.sh: '$c' left something behind" >&2; exit 1; }
done

echo "vmflow: $("$VMFLOW" version 2>/dev/null || echo '?')  sha256 $(sha256sum "$VMFLOW" | cut -c1-12)" \
  " plugin sha256 $(sha256sum "$repo/bin/vmflow-plugin-libvirt" | cut -c1-12)"
[ -z "${BASE:-}" ] || echo "before: $BASE $("$BASE" version 2>/dev/null || echo '?')  sha256 $(sha256sum "$BASE" | cut -c1-12)" \
  " plugin sha256 $(sha256sum "$(dirname "$BASE")/vmflow-plugin-libvirt" | cut -c1-12)"
virsh -c "$URI" version --daemon | grep -E 'daemon|hypervisor' | tr -s ' ' | paste -sd';'
echo "$(qemu-img --version | head -1)"
echo "pool $pool ($dir), state dir $VMFLOW_STATE_DIR"
echo "rounds=$RUNS warmup=$WARMUP, $(nproc) cores"
echo

python3 "$repo/bench/cmp.py" -n "$RUNS" -w "$WARMUP" --json "$OUT" \
  --prepare "$prepare" "${ratios[@]}" "${cmds[@]}"

$prepare # the last run of the last command left nothing either
cp "$OUT" "${OUT%.json}-$(date -u +%Y%m%dT%H%M%SZ).json"
