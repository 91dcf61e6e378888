#!/usr/bin/env bash
# Removes what a benchmark iteration may have left in libvirt: domains
# bench-vm-*, volumes bench-ov-* of the pool, files bench-ov-* in its
# directory. With --strict, finding anything is an error (exit 1) after the
# cleanup: run.sh passes it as hyperfine's --prepare, so every timed command
# is checked to have left nothing behind.
#
#   clean.sh [--strict] POOL DIR
# Env: URI (default qemu:///system).
set -euo pipefail
strict=0
if [ "${1:-}" = --strict ]; then strict=1; shift; fi
pool=$1 dir=$2
uri=${URI:-qemu:///system}
found=()

for d in $(virsh -q -c "$uri" list --all --name | grep '^bench-vm-' || true); do
  found+=("domain $d")
  virsh -q -c "$uri" undefine "$d" >/dev/null
done
if virsh -q -c "$uri" pool-info "$pool" >/dev/null 2>&1; then
  # Files made behind libvirt's back (virsh.sh) show up after a refresh.
  virsh -q -c "$uri" pool-refresh "$pool" >/dev/null
  for v in $(virsh -q -c "$uri" vol-list "$pool" | awk '$1 ~ /^bench-ov-/ {print $1}'); do
    found+=("volume $v")
    virsh -q -c "$uri" vol-delete "$v" --pool "$pool" >/dev/null
  done
fi
for f in "$dir"/bench-ov-*; do
  [ -e "$f" ] || continue
  found+=("file $f")
  rm -f "$f"
done

if [ ${#found[@]} -gt 0 ]; then
  echo "clean.sh: left behind: ${found[*]}" >&2
  [ $strict = 0 ] || exit 1
fi
exit 0
