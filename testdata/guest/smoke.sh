#!/usr/bin/env bash
# smoke.sh OUTDIR: build the test guest into OUTDIR (cached) and boot it three
# times under plain qemu-system-x86_64 with a persistent virtio var disk:
#   1. vmflow.marker=hello                  -> var empty, marker written
#   2. vmflow.marker=second vmflow.files=1  -> marker from boot 1 survived
#   3. vmflow.stay=1                        -> DHCP, qemu-ga answers guest-ping,
#                                              guest-shutdown powers the VM off
# Scratch files (disks, serial logs) go to OUTDIR/smoke. Exits non-zero, with
# the tail of the serial log, on the first failure.
# VMFLOW_ACCEL=kvm|tcg skips the KVM probe; VMFLOW_BOOT_TIMEOUT (s, default 120).
set -euo pipefail

if [ "$#" -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/build.sh" "$1"
OUT=$(cd "$1" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
ensure_pkgs qemu-system-x86 qemu-utils e2fsprogs
command -v python3 >/dev/null || ensure_pkgs python3

TIMEOUT=${VMFLOW_BOOT_TIMEOUT:-120}
WORK=$OUT/smoke
rm -rf "$WORK"
mkdir -p "$WORK"
QEMU_PID=
trap '[ -z "$QEMU_PID" ] || kill "$QEMU_PID" 2>/dev/null || true' EXIT

# fail MSG [LOG]: report, show the end of LOG (a serial log), exit 1.
fail() {
	echo "FAIL: $1" >&2
	if [ -n "${2:-}" ] && [ -f "$2" ]; then
		echo "--- last 40 lines of $2" >&2
		tail -n 40 "$2" | tr -d '\r' >&2
		[ -s "$2.stderr" ] && { echo "--- qemu stderr" >&2; cat "$2.stderr" >&2; }
	fi
	exit 1
}

# has_line LOG LINE: LOG (serial output, CRLF line ends) has exactly LINE as a line.
has_line() { tr -d '\r' <"$1" | grep -qxF -- "$2"; }

# expect LOG LINE...: fail unless every LINE is in LOG, or if the guest reported an error.
expect() {
	local log=$1 line
	shift
	for line in "$@"; do
		has_line "$log" "$line" || fail "no line '$line' in the serial log" "$log"
	done
	if tr -d '\r' <"$log" | grep -q '^VMFLOW-ERROR'; then
		fail "the guest reported an error" "$log"
	fi
}

now_ms() { date +%s%3N; }
secs_since() { awk -v ms=$(($(now_ms) - $1)) 'BEGIN { printf "%.1f", ms / 1000 }'; }

# qemu_args APPEND LOG: the QEMU command line for one boot of the guest.
# /dev/vdb is the var disk: the first virtio disk (vda) stands for the disk vmflow
# attaches before it, here an empty placeholder.
# shellcheck disable=SC2054 # commas belong to QEMU's option syntax
qemu_args() {
	QEMU=(qemu-system-x86_64 -accel "$ACCEL" -m 512 -nodefaults -no-user-config
		-display none -no-reboot -serial "file:$2"
		-kernel "$OUT/vmlinuz" -initrd "$OUT/initrd.img" -append "console=ttyS0 panic=-1 $1"
		-drive "file=$WORK/vda.qcow2,if=virtio,format=qcow2"
		-drive "file=$WORK/var.qcow2,if=virtio,format=qcow2"
		-netdev user,id=net0 -device virtio-net-pci,netdev=net0,romfile=)
}

# pick_accel: kvm if /dev/kvm really runs this kernel, else tcg. An openable
# /dev/kvm is not enough (nested or paravirtual KVM may hang the guest), so boot
# the kernel alone and wait a few seconds for its first message.
pick_accel() {
	if [ -n "${VMFLOW_ACCEL:-}" ]; then
		echo "$VMFLOW_ACCEL"
		return
	fi
	if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		echo tcg
		return
	fi
	local log=$WORK/kvm-probe.log pid i
	qemu-system-x86_64 -accel kvm -m 512 -nodefaults -no-user-config -display none \
		-no-reboot -serial "file:$log" -kernel "$OUT/vmlinuz" \
		-append "earlyprintk=ttyS0 console=ttyS0 panic=-1" 2>/dev/null &
	pid=$!
	for i in $(seq 50); do
		grep -qs 'Linux version' "$log" && break
		sleep 0.1
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	if grep -qs 'Linux version' "$log"; then echo kvm; else echo tcg; fi
}

# boot N APPEND LINE...: boot to power-off (the guest ends itself) and expect LINEs.
boot() {
	local n=$1 append=$2 log=$WORK/boot$1.log start rc=0
	shift 2
	qemu_args "$append" "$log"
	start=$(now_ms)
	timeout "$TIMEOUT" "${QEMU[@]}" 2>"$log.stderr" || rc=$?
	[ "$rc" -eq 124 ] && fail "boot $n ($append) did not power off within ${TIMEOUT}s" "$log"
	[ "$rc" -eq 0 ] || fail "boot $n ($append): qemu exited with $rc" "$log"
	expect "$log" VMFLOW-BOOTED "$@" "VMFLOW-SHUTDOWN: poweroff"
	echo "boot $n ($append): ok, $(secs_since "$start") s from start to power-off"
}

# agent SOCKET ping|shutdown: talk to qemu-ga over its virtio-serial socket.
# ping retries for 30 s (the agent may still be starting) and prints the reply.
agent() {
	python3 - "$@" <<'EOF'
import socket, sys, time

path, what = sys.argv[1], sys.argv[2]
if what == "shutdown":
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        s.sendall(b'{"execute":"guest-shutdown"}\n')  # no reply: the guest goes down
    sys.exit(0)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(path)
        s.sendall(b'{"execute":"guest-ping"}\n')
        reply = b""
        try:
            while not reply.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except socket.timeout:
            continue
        if reply.strip() == b'{"return": {}}':
            print(reply.decode().strip())
            sys.exit(0)
        sys.exit(f"unexpected agent reply: {reply!r}")
sys.exit("no reply to guest-ping within 30 s")
EOF
}

# stay_boot: boot with vmflow.stay=1 and a guest-agent channel, wait for
# VMFLOW-READY, ping the agent, then power off through guest-shutdown.
stay_boot() {
	local append="vmflow.stay=1" log=$WORK/boot3.log sock=$WORK/qga.sock start i
	qemu_args "$append" "$log"
	# shellcheck disable=SC2054
	QEMU+=(-chardev "socket,id=qga0,path=$sock,server=on,wait=off"
		-device virtio-serial-pci
		-device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0)
	: >"$log"
	start=$(now_ms)
	"${QEMU[@]}" 2>"$log.stderr" &
	QEMU_PID=$!
	for ((i = 0; i < TIMEOUT * 10; i++)); do
		tr -d '\r' <"$log" | grep -q '^VMFLOW-READY ip=' && break
		kill -0 "$QEMU_PID" 2>/dev/null || fail "boot 3 ($append): qemu exited before VMFLOW-READY" "$log"
		sleep 0.1
	done
	expect "$log" VMFLOW-BOOTED "VMFLOW-VAR-BEFORE: second"
	tr -d '\r' <"$log" | grep -q '^VMFLOW-READY ip=[0-9][0-9.]*$' ||
		fail "boot 3 ($append): no 'VMFLOW-READY ip=<address>' within ${TIMEOUT}s" "$log"
	echo "boot 3 ($append): $(tr -d '\r' <"$log" | grep '^VMFLOW-READY'), $(secs_since "$start") s from start"

	start=$(now_ms)
	agent "$sock" ping || fail "boot 3: the guest agent did not answer guest-ping" "$log"
	echo "boot 3: guest-ping answered in $(secs_since "$start") s"

	start=$(now_ms)
	agent "$sock" shutdown
	for ((i = 0; i < 300; i++)); do
		kill -0 "$QEMU_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$QEMU_PID" 2>/dev/null && fail "boot 3: guest-shutdown did not power off within 30 s" "$log"
	wait "$QEMU_PID" || fail "boot 3: qemu exited with $?" "$log"
	QEMU_PID=
	expect "$log" "VMFLOW-SHUTDOWN: poweroff"
	echo "boot 3: guest-shutdown powered off in $(secs_since "$start") s"
}

ACCEL=$(pick_accel)
echo "accelerator: $ACCEL"
qemu-img create -q -f qcow2 "$WORK/vda.qcow2" 16M
truncate -s 64M "$WORK/var.raw"
mkfs.ext4 -F -q -L var "$WORK/var.raw"
qemu-img convert -O qcow2 "$WORK/var.raw" "$WORK/var.qcow2"
rm "$WORK/var.raw"

boot 1 "vmflow.marker=hello" "VMFLOW-VAR-BEFORE: none" "VMFLOW-MARKER: hello"
boot 2 "vmflow.marker=second vmflow.files=1" "VMFLOW-VAR-BEFORE: hello" "VMFLOW-MARKER: second" \
	"VMFLOW-FILE: marker $(printf 'second\n' | sha256sum | cut -d' ' -f1)"
stay_boot
echo "smoke: 3 passed, 0 failed"
