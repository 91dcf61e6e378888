#!/usr/bin/env bash
# Starts what vmflow's libvirt backend needs, on machines with or without
# systemd, and is safe to rerun: virtlogd and libvirtd, /dev/kvm
# permissions, and libvirt's default NAT network.
set -euo pipefail

say() { printf '==> %s\n' "$*"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "need root (or sudo) to run: $*" >&2; exit 1
  fi
}

# /dev/kvm is root:kvm 0660 where udev runs; without udev (containers,
# sandboxes) it can be root-only. libvirt then probes QEMU as root (KVM
# found) but checks KVM as the qemu user (not found), declares its
# capability cache stale, and re-probes QEMU on every define: 30-100 s
# each. Restore the usual permissions.
if [ -e /dev/kvm ] && getent group kvm >/dev/null && [ "$(stat -c %G /dev/kvm)" != kvm ]; then
  say "giving /dev/kvm its usual root:kvm 0660"
  as_root chgrp kvm /dev/kvm
  as_root chmod 0660 /dev/kvm
fi

if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  as_root systemctl start virtlogd libvirtd
else
  pgrep -x virtlogd >/dev/null || { say "starting virtlogd"; as_root virtlogd -d; }
  pgrep -x libvirtd >/dev/null || { say "starting libvirtd"; as_root libvirtd -d; }
fi
for _ in $(seq 50); do
  [ -S /run/libvirt/libvirt-sock ] && break
  sleep 0.1
done
[ -S /run/libvirt/libvirt-sock ] || { echo "libvirtd did not come up (no /run/libvirt/libvirt-sock)" >&2; exit 1; }

virsh_() { as_root virsh -q -c qemu:///system "$@"; }
if ! virsh_ net-info default >/dev/null 2>&1; then
  say "defining libvirt's default NAT network"
  virsh_ net-define /usr/share/libvirt/networks/default.xml >/dev/null
  virsh_ net-autostart default >/dev/null
fi
info=$(virsh_ net-info default 2>/dev/null || true)
if ! grep -qE '^Active:\s+yes' <<<"$info"; then
  say "starting libvirt's default NAT network"
  virsh_ net-start default >/dev/null
fi
say "libvirtd is up ($(virsh -c qemu:///system version 2>/dev/null | awk '/Running hypervisor/ {print $3, $4}'))"
