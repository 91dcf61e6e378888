#!/usr/bin/env bash
# `make demo`: a real VM through create → snapshot → restore on the local
# libvirtd, with the freshly built binaries and the Debian-built test guest
# (a kernel and a busybox initramfs whose /init keeps a marker on /var and
# runs the QEMU guest agent). `make demo BACKEND=proxmox-stub` runs the
# same tasks on the Proxmox stand-in, which runs no guest: there the steps
# that read /var through the guest agent show the command a real Proxmox
# would run instead.
#
# The demo keeps its own state directory, so it only ever removes a VM it
# made itself: a VM of that name it did not make stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"
export VMFLOW_STATE_DIR="${VMFLOW_STATE_DIR:-$PWD/.cache/demo-state}"
export VMFLOW_VAR_backend="${BACKEND:-libvirt}"
vm=${DEMO_VM:-demo}
guest="$PWD/.cache/guest"
record="$VMFLOW_STATE_DIR/machines/$VMFLOW_VAR_backend/$vm/record.json"

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show() { bold "\$ $*"; "$@"; }
# marker: what /var/vmflow/marker holds, read through the guest agent
# (which may still be starting right after a boot).
marker() {
	local out i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		if out=$(vmflow exec "$vm" cat /var/vmflow/marker 2>&1); then
			sed -n 's/^ *stdout = "\(.*\)\\n"$/\1/p' <<<"$out"
			return 0
		fi
		if grep -q 'a real Proxmox would run' <<<"$out"; then
			grep -o 'a real Proxmox would run `[^`]*`' <<<"$out" | head -1
			return 0
		fi
		sleep 1
	done
	printf '%s\n' "$out" >&2
	return 1
}
# write TEXT: put TEXT in /var/vmflow/marker through the guest agent.
write() {
	bold "\$ vmflow exec $vm -- sh -c 'echo $1 > /var/vmflow/marker'"
	vmflow exec "$vm" -- sh -c "mkdir -p /var/vmflow && echo $1 > /var/vmflow/marker && sync" >/dev/null 2>&1 || stub
}
stub() { [ "$VMFLOW_VAR_backend" = proxmox-stub ]; }

testdata/guest/build.sh "$guest" >/dev/null

# Leftovers of an earlier demo go; anything else named like it stops us.
if [ -f "$record" ]; then
	vmflow purge "$vm" >/dev/null
elif vmflow status "$vm" 2>/dev/null | grep -q 'state = "\(running\|shut off\|paused\)"'; then
	echo "demo: a VM named $vm exists and the demo did not make it; run with DEMO_VM=another-name" >&2
	exit 1
fi

show vmflow list
bold "\$ vmflow create $vm --memory 512 --var_size 1G --var kernel=… --var initrd=…"
vmflow create "$vm" --yes --memory 512 --var_size 1G \
	--var kernel="$guest/vmlinuz" --var initrd="$guest/initrd.img" \
	--var cmdline="console=ttyS0 vmflow.stay=1"
show vmflow status "$vm"
write first
bold "/var/vmflow/marker: $(marker)"

show vmflow snapshot "$vm" before-change
write second
show vmflow stop "$vm"
show vmflow start "$vm"
bold "/var/vmflow/marker after the change and a new boot: $(marker)"

show vmflow restore-snapshot "$vm" before-change
after=$(marker)
bold "/var/vmflow/marker after restore-snapshot: $after"
if ! stub && [ "$after" != first ]; then
	echo "demo: /var did not come back to the snapshot" >&2
	exit 1
fi
show vmflow snapshots "$vm"
show vmflow restore-snapshot "$vm" no-such-snapshot || true
show vmflow runs --limit 8
show vmflow destroy "$vm"
vmflow purge "$vm" >/dev/null
printf '\nThe VM %s went through create → snapshot → restore on %s and is gone again.\nJournals and logs: %s\n' "$vm" "$VMFLOW_VAR_backend" "$VMFLOW_STATE_DIR"
