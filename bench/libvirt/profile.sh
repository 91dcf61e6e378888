#!/usr/bin/env bash
# Where the time of `vmflow run bench` goes, next to the raw floor and the
# bash script: per-operation and per-RPC times. Not timed by hyperfine;
# each measurement is repeated R times (default 5) and analyze.py reports
# medians.
#
#   bench/libvirt/profile.sh          # R=5; writes bench/results/libvirt-profile/
#
# What it records (in bench/results/libvirt-profile/):
#   raw-N.txt        raw -v: each operation's duration
#   bash-N.trace     virsh.sh under `set -x` with PS4='+ $EPOCHREALTIME ':
#                    each command's start time
#   ev-pP-N.jsonl    vmflow --json -v --parallelism P run bench (P = 1, 4),
#   ev-pP-N.log      its debug log (start-up timeline), and
#   ev-pP-N.time     the wall-clock times around it (bash $EPOCHREALTIME)
#   hello-pP-N.*     the same for tasks-hello.hcl: the same 80-step graph
#                    on the example plugin's no-op hello.greet (the control)
#   rpc-*.jsonl      every libvirt RPC of one run, through rpcspy/ (the
#                    plugin's `socket` config points at the spy; the task
#                    file is a copy of tasks.hcl with that one change)
#   fsync-p1.txt     strace -c of fsync in one vmflow run (the journal)
# and then prints analyze.py's tables.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH=/usr/local/go/bin:$PATH
R=${R:-5}
OUTDIR=${OUTDIR:-$repo/bench/results/libvirt-profile}
STATE=${BENCH_STATE_DIR:-$repo/bench/results/libvirt-state} # as run.sh
mkdir -p "$STATE"
VMFLOW_STATE_DIR=$(cd "$STATE" && pwd)
export VMFLOW_STATE_DIR
export URI=qemu:///system
VMFLOW=$repo/bin/vmflow
RAW=$repo/bench/results/libvirt-raw
SPY=$repo/bench/results/libvirt-rpcspy
TASKS=$here/tasks.hcl

line=$("$here/run.sh" --setup | tail -1) # builds vmflow, the plugin and raw
pool=$(echo "$line" | sed -n 's/^pool \([^,]*\), base \([^,]*\),.*/\1/p')
base=$(echo "$line" | sed -n 's/^pool \([^,]*\), base \([^,]*\),.*/\2/p')
if [ -z "$pool" ] || [ ! -f "$base" ]; then echo "profile.sh: setup failed: $line" >&2; exit 1; fi
dir=$(dirname "$base")
trap '"$here/run.sh" --teardown >/dev/null' EXIT
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$SPY" ./bench/libvirt/rpcspy)
names=$(cd "$repo" && go list -m -f '{{.Dir}}' github.com/digitalocean/go-libvirt)/internal/constants/remote_protocol.gen.go

rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
check() { "$here/clean.sh" --strict "$pool" "$dir"; }
"$here/clean.sh" "$pool" "$dir" # leftovers of an interrupted run

# The control: the same 80-step graph on the example plugin's no-op action
# (hello.greet: one log line, one output), i.e. vmflow's own cost per step.
{
  echo 'plugin "h" {'
  echo '  source = "hello"'
  echo '}'
  echo 'task "bench" {'
  for i in $(seq 1 20); do
    prev=""
    for s in ov vm undef del; do
      echo "  step \"${s}_$i\" {"
      echo "    action = h.greet"
      echo "    name   = \"$s-$i\""
      [ -z "$prev" ] || echo "    depends_on = [step.$prev]"
      echo "  }"
      prev=${s}_$i
    done
  done
  echo '}'
} >"$OUTDIR/tasks-hello.hcl"

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUTDIR/load.txt"
for r in $(seq 1 "$R"); do
  "$RAW" -pool "$pool" -base bench-base -v 2>"$OUTDIR/raw-$r.txt"
  check
  # (bash ignores PS4 from the environment when run as root)
  bash -c 'PS4="+ \$EPOCHREALTIME "; set -x; . "$0" "$@"' "$here/virsh.sh" "$pool" "$base" 20 2>"$OUTDIR/bash-$r.trace"
  check
  for p in 4 1; do
    t0=$EPOCHREALTIME
    "$VMFLOW" --json -v --parallelism $p -f "$TASKS" run bench --kernel "$base" \
      >"$OUTDIR/ev-p$p-$r.jsonl" 2>"$OUTDIR/ev-p$p-$r.log"
    t1=$EPOCHREALTIME
    echo "$t0 $t1" >"$OUTDIR/ev-p$p-$r.time"
    check
    t0=$EPOCHREALTIME
    "$VMFLOW" --json -v --parallelism $p -f "$OUTDIR/tasks-hello.hcl" run bench \
      >"$OUTDIR/hello-p$p-$r.jsonl" 2>"$OUTDIR/hello-p$p-$r.log"
    t1=$EPOCHREALTIME
    echo "$t0 $t1" >"$OUTDIR/hello-p$p-$r.time"
  done
done

# One run of each through the RPC spy.
sock=$OUTDIR/spy.sock
sed "s|config = { uri = \"qemu:///system\", virt_type = \"qemu\" }|config = { uri = \"qemu:///system\", virt_type = \"qemu\", socket = \"$sock\" }|" \
  "$TASKS" >"$OUTDIR/tasks-spy.hcl"
grep -q "socket = " "$OUTDIR/tasks-spy.hcl"
spy() { # spy LABEL CMD…
  local label=$1 pid
  shift
  "$SPY" -listen "$sock" -out "$OUTDIR/rpc-$label.jsonl" -names "$names" &
  pid=$!
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.02; done
  "$@"
  kill -TERM "$pid"
  wait "$pid" || true
  check
}
for p in 1 4; do
  spy vmflow-p$p "$VMFLOW" --json --parallelism $p -f "$OUTDIR/tasks-spy.hcl" run bench --kernel "$base" >"$OUTDIR/ev-spy-p$p.jsonl"
done
spy raw "$RAW" -pool "$pool" -base bench-base -socket "$sock" 2>/dev/null

# The journal's fsyncs in one run at parallelism 1.
strace -f -c -e trace=fsync,fdatasync -o "$OUTDIR/fsync-p1.txt" \
  "$VMFLOW" --parallelism 1 -f "$TASKS" run bench --kernel "$base" >/dev/null 2>&1
check
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUTDIR/load.txt"

python3 "$here/analyze.py" "$OUTDIR"
