#!/usr/bin/env bash
# `make demo`: a real VM through create → snapshot → restore on the local
# libvirtd, with the freshly built binaries and the Debian-built test guest
# (a kernel and a busybox initramfs whose /init keeps a marker on /var and
# runs the QEMU guest agent). Safe to rerun: it removes the demo VM it made
# the last time first, and at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"
export VMFLOW_STATE_DIR="${VMFLOW_STATE_DIR:-$PWD/.cache/demo-state}"
vm=${DEMO_VM:-vmflow-demo}
guest="$PWD/.cache/guest"

show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

testdata/guest/build.sh "$guest" >/dev/null
vmflow destroy "$vm" >/dev/null 2>&1 || true

show vmflow list
show vmflow create "$vm" --memory 512 --var_size 1G \
  --var kernel="$guest/vmlinuz" --var initrd="$guest/initrd.img" \
  --var cmdline="console=ttyS0 vmflow.marker=first vmflow.stay=1"
show vmflow exec "$vm" cat /var/vmflow/marker
show vmflow snapshot "$vm" before-change
show vmflow exec "$vm" -- sh -c 'echo second > /var/vmflow/marker && cat /var/vmflow/marker'
show vmflow restore-snapshot "$vm" before-change
out=$(vmflow exec "$vm" cat /var/vmflow/marker)
printf '\n\033[1m$ vmflow exec %s cat /var/vmflow/marker\033[0m\n%s\n' "$vm" "$out"
grep -q 'stdout = "first\\n"' <<<"$out" || { echo "demo: /var did not come back to the snapshot" >&2; exit 1; }
show vmflow snapshots "$vm"
show vmflow restore-snapshot "$vm" no-such-snapshot || true
show vmflow runs --limit 8
show vmflow destroy "$vm"
printf '\nThe demo VM went through create → snapshot → restore and is gone again.\nJournals and logs: %s\n' "$VMFLOW_STATE_DIR"
