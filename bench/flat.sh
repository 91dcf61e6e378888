#!/usr/bin/env bash
# Whether vmflow's costs stay flat as /var and the number of VMs grow
# (issue 15, goal 4). Three comparisons, each side by side in one run,
# rounds interleaved, medians:
#
#   var      snapshot, restore-snapshot and upgrade of a shut-off VM with
#            1 GiB written on its /var against one with 8 GiB written
#            (default lifecycle, libvirt, the test guest: make guest)
#   count    creating 10 against 50 VMs (boot overlay + /var + define, not
#            booting) in one vmflow run each: the time per VM
#   records  vmflow vms and vmflow status with 5 against 50 machine records
#            (proxmox-stub: the records are what grows)
#
#   bench/flat.sh [var|count|records]…   (default: all three)
#
# Env: ROUNDS (5), SIZES ("1 8", GiB), COUNTS ("10 50"), RECORDS ("5 50"),
# OUT (bench/results/flat.tsv). Needs qemu:///system, qemu-io and
# hyperfine; every VM and volume it makes is named flat-* and removed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
ROUNDS=${ROUNDS:-5}
SIZES=${SIZES:-"1 8"}
COUNTS=${COUNTS:-"10 50"}
RECORDS=${RECORDS:-"5 50"}
OUT=${OUT:-$repo/bench/results/flat.tsv}
VMFLOW=$repo/bin/vmflow
GUEST=$repo/.cache/guest
work=$(mktemp -d /tmp/vmflow-flat.XXXXXX)
mkdir -p "$(dirname "$OUT")"
: >"$OUT"
cleanup_fns=()
cleanup() {
  local f
  for f in "${cleanup_fns[@]}"; do "$f" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# pool_of STATE_DIR: the libvirt plugin's pool for a state dir,
# vmflow-<sha256 of it, 8 hex digits> (plugins/libvirt/conn.go).
pool_of() { echo "vmflow-$(printf %s "$1" | sha256sum | cut -c1-8)"; }

# drop_pool NAME removes a pool the benchmark made (its volumes are gone).
drop_pool() {
  virsh -c qemu:///system pool-destroy "$1" >/dev/null 2>&1 || true
  virsh -c qemu:///system pool-delete "$1" >/dev/null 2>&1 || true
  virsh -c qemu:///system pool-undefine "$1" >/dev/null 2>&1 || true
}

# now prints a monotonic clock in nanoseconds.
now() { date +%s%N; }

# median of its arguments (numbers).
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# row WHAT SMALL LARGE: a line of the table, with the ratio large/small.
row() {
  local what=$1 small=$2 large=$3
  awk -v w="$what" -v s="$small" -v l="$large" 'BEGIN { printf "%-44s %10.1f %10.1f %7.2fx\n", w, s/1e6, l/1e6, l/s }'
  printf '%s\t%s\t%s\n' "$what" "$small" "$large" >>"$OUT"
}

make -C "$repo" build >/dev/null

# ---------------------------------------------------------------------------
# /var size: snapshot, restore-snapshot, upgrade of 1 GiB against 8 GiB.
var_bench() {
  [ -r "$GUEST/vmlinuz" ] || make -C "$repo" guest >/dev/null
  export VMFLOW_STATE_DIR=$work/var-state
  lv=("$VMFLOW" -f "$repo/tasks.hcl" --var "kernel=$GUEST/vmlinuz" --var "initrd=$GUEST/initrd.img" --var wait_for_ip=false)
  var_cleanup() {
    local s
    for s in $SIZES; do VMFLOW_STATE_DIR=$work/var-state "${lv[@]}" purge "flat-${s}g" >/dev/null 2>&1 || true; done
    drop_pool "$(pool_of "$work/var-state")"
  }
  cleanup_fns+=(var_cleanup)
  local s path
  for s in $SIZES; do
    "${lv[@]}" purge "flat-${s}g" >/dev/null 2>&1 || true
    "${lv[@]}" create "flat-${s}g" --memory 256 --var_size 10G --yes >/dev/null 2>&1
    "${lv[@]}" force-stop "flat-${s}g" >/dev/null 2>&1
    path=$(virsh -c qemu:///system domblklist "flat-${s}g" | awk '$1 == "vdb" {print $2}')
    echo "writing ${s} GiB on flat-${s}g's /var ($path)" >&2
    # qemu-io writes at most 2 GiB at a time: 1 GiB a command.
    local g cmds=()
    for g in $(seq 0 $((s - 1))); do cmds+=(-c "write -P 0x5a ${g}G 1G"); done
    qemu-io -f qcow2 "${cmds[@]}" "$path" >/dev/null
  done
  declare -A t
  local r op start
  for r in $(seq "$ROUNDS"); do
    for s in $SIZES; do
      for op in snapshot restore-snapshot upgrade; do
        start=$(now)
        case $op in
          snapshot) "${lv[@]}" snapshot "flat-${s}g" "r$r" >/dev/null 2>&1 ;;
          restore-snapshot) "${lv[@]}" restore-snapshot "flat-${s}g" "r$r" >/dev/null 2>&1 ;;
          upgrade) "${lv[@]}" upgrade "flat-${s}g" >/dev/null 2>&1 ;;
        esac
        t[$op,$s]+="$(($(now) - start)) "
      done
      # Untimed: back to shut off, without the snapshot, for the next round.
      "${lv[@]}" force-stop "flat-${s}g" >/dev/null 2>&1
      "${lv[@]}" delete-snapshot "flat-${s}g" "r$r" >/dev/null 2>&1
    done
  done
  local small large
  read -r small large <<<"$SIZES"
  for op in snapshot restore-snapshot upgrade; do
    # shellcheck disable=SC2086
    row "$op, ${small} GiB vs ${large} GiB on /var (ms)" "$(median ${t[$op,$small]})" "$(median ${t[$op,$large]})"
  done
  var_cleanup
}

# ---------------------------------------------------------------------------
# VM count: one run creating N VMs (overlay + /var + define), per VM.
count_tasks() {
  local n=$1
  cat <<HDR
plugin "lv" {
  source = "libvirt"
  config = { uri = "qemu:///system", virt_type = "qemu" }
}
task "base" {
  step "base" {
    action = lv.volume_create
    name   = "flat-base"
    size   = "64M"
  }
}
task "create" {
  param "base" { type = string }
HDR
  local i
  for i in $(seq "$n"); do
    cat <<STEP
  step "boot$i" {
    action  = lv.volume_overlay
    name    = "flat-vm$i-boot"
    backing = param.base
  }
  step "var$i" {
    action = lv.volume_create
    name   = "flat-vm$i-var"
    size   = "1G"
  }
  step "vm$i" {
    action      = lv.define
    name        = "flat-vm$i"
    memory      = 128
    boot_volume = step.boot$i.name
    var_volume  = step.var$i.name
    network     = "none"
  }
STEP
  done
  echo "}"
}

count_bench() {
  export VMFLOW_STATE_DIR=$work/count-state
  count_cleanup() {
    local d v
    for d in $(virsh -c qemu:///system list --all --name | grep '^flat-vm' || true); do
      virsh -c qemu:///system undefine --nvram "$d" >/dev/null 2>&1 || virsh -c qemu:///system undefine "$d" >/dev/null 2>&1 || true
    done
    for v in $(virsh -c qemu:///system vol-list --pool "$pool" 2>/dev/null | awk '$1 ~ /^flat-vm/ {print $1}'); do
      virsh -c qemu:///system vol-delete --pool "$pool" "$v" >/dev/null 2>&1 || true
    done
  }
  local n base
  for n in $COUNTS; do count_tasks "$n" >"$work/count-$n.hcl"; done
  pool=$(pool_of "$VMFLOW_STATE_DIR")
  "$VMFLOW" -f "$work/count-${COUNTS%% *}.hcl" run base >/dev/null 2>&1
  base=$(virsh -c qemu:///system vol-path --pool "$pool" flat-base)
  cleanup_fns+=(count_cleanup)
  count_pool_cleanup() { drop_pool "$pool"; }
  cleanup_fns+=(count_pool_cleanup)
  declare -A t
  local r start
  for r in $(seq "$ROUNDS"); do
    for n in $COUNTS; do
      count_cleanup
      virsh -c qemu:///system vol-info --pool "$pool" flat-base >/dev/null
      start=$(now)
      "$VMFLOW" -f "$work/count-$n.hcl" run create "$base" >/dev/null 2>&1
      t[$n]+="$((($(now) - start) / n)) "
    done
  done
  count_cleanup
  virsh -c qemu:///system vol-delete --pool "$pool" flat-base >/dev/null 2>&1 || true
  local small large
  read -r small large <<<"$COUNTS"
  # shellcheck disable=SC2086
  row "create, per VM: $small vs $large VMs in one run (ms)" "$(median ${t[$small]})" "$(median ${t[$large]})"
}

# ---------------------------------------------------------------------------
# Records: vmflow vms and status with few against many machine records.
records_bench() {
  local n i small large img=$work/disk.img
  head -c 1M /dev/zero >"$img"
  read -r small large <<<"$RECORDS"
  for n in $RECORDS; do
    export VMFLOW_STATE_DIR=$work/records-$n
    for i in $(seq "$n"); do
      "$VMFLOW" -f "$repo/tasks.hcl" --var backend=proxmox-stub create "r$i" --image "$img" --yes >/dev/null 2>&1
    done
  done
  local stub=(-f "$repo/tasks.hcl" --var backend=proxmox-stub)
  hyperfine -N -w 3 -r $((ROUNDS * 10)) --export-json "$work/records.json" \
    -n "vms-$small" "env VMFLOW_STATE_DIR=$work/records-$small $VMFLOW ${stub[*]} vms" \
    -n "vms-$large" "env VMFLOW_STATE_DIR=$work/records-$large $VMFLOW ${stub[*]} vms" \
    -n "status-$small" "env VMFLOW_STATE_DIR=$work/records-$small $VMFLOW ${stub[*]} status r1" \
    -n "status-$large" "env VMFLOW_STATE_DIR=$work/records-$large $VMFLOW ${stub[*]} status r1" >/dev/null
  local what
  for what in vms status; do
    row "$what: $small vs $large machine records (ms)" \
      "$(jq -r --arg n "$what-$small" '.results[] | select(.command == $n) | .median * 1e9' "$work/records.json")" \
      "$(jq -r --arg n "$what-$large" '.results[] | select(.command == $n) | .median * 1e9' "$work/records.json")"
  done
}

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(var count records)
printf '%-44s %10s %10s %8s\n' "flatness (medians, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))" small large ratio
for p in "${parts[@]}"; do
  case $p in
    var) var_bench ;;
    count) count_bench ;;
    records) records_bench ;;
    *) echo "flat.sh: unknown part $p (var, count, records)" >&2; exit 2 ;;
  esac
done
