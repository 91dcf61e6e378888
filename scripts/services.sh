#!/usr/bin/env bash
# Starts what vmflow's libvirt backend needs, on machines with or without
# systemd, and is safe to rerun: virtlogd and libvirtd (its socket open to
# the libvirt group), /dev/kvm permissions, libvirt's default NAT network,
# and the normal user the tests run vmflow as (scripts/test-user.sh).
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

# A normal user in the libvirt group manages VMs through libvirtd's socket
# (README.md, "As yourself, not root"). Debian lets that group in through polkit,
# which needs a system bus: without systemd there is none, and every
# normal user is refused. So: the read-write socket root:libvirt 0770, and
# no further check for whoever may open it (auth_unix_rw = "none"), with or
# without systemd. Root is not affected.
# One copy at a time from here on (make test run twice at once): the
# settings are written, and libvirtd started or restarted, once.
# (The daemons started below must not inherit the lock: 8<&-.)
exec 8</etc/libvirt
flock -w 300 8 || { echo "another scripts/services.sh has held /etc/libvirt's lock for 5 minutes" >&2; exit 1; }
systemd=
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemd=1; fi
sock=/run/libvirt/libvirt-sock
conf=/etc/libvirt/libvirtd.conf
getent group libvirt >/dev/null || { say "adding the libvirt group"; as_root groupadd --system libvirt; }
changed=
# set_conf KEY VALUE: KEY = "VALUE" in libvirtd.conf, in place of any
# setting of KEY there, else at the end, under one marker line.
set_conf() {
  local line="$1 = \"$2\""
  grep -qxF "$line" "$conf" && return 0
  if grep -qE "^[[:space:]]*$1[[:space:]]*=" "$conf"; then
    as_root sed -i -E "s|^[[:space:]]*$1[[:space:]]*=.*|$line|" "$conf"
  else
    grep -qxF "# vmflow: the libvirt group's access (scripts/services.sh)" "$conf" ||
      printf '\n%s\n' "# vmflow: the libvirt group's access (scripts/services.sh)" | as_root tee -a "$conf" >/dev/null
    printf '%s\n' "$line" | as_root tee -a "$conf" >/dev/null
  fi
  changed=1
}
set_conf unix_sock_group libvirt
set_conf unix_sock_rw_perms 0770
set_conf auth_unix_rw none
# Under systemd the socket unit makes the socket (its SocketMode is 0666,
# for polkit), not libvirtd.conf.
dropin=/etc/systemd/system/libvirtd.socket.d/vmflow-libvirt-group.conf
if [ -n "$systemd" ] && ! [ -f "$dropin" ]; then
  as_root mkdir -p "$(dirname "$dropin")"
  printf '[Socket]\nSocketGroup=libvirt\nSocketMode=0770\n' | as_root tee "$dropin" >/dev/null
  as_root systemctl daemon-reload
  changed=1
fi
sock_ok() { [ -S "$sock" ] && [ "$(stat -c '%U:%G %a' "$sock")" = "root:libvirt 770" ]; }

# wait_up: until libvirtd answers on its socket, as root (at most 10 s).
wait_up() {
  for _ in $(seq 100); do
    [ -S "$sock" ] && as_root virsh -q -c qemu:///system uri >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "libvirtd did not come up (nothing answers on $sock)" >&2; exit 1
}

if [ -n "$systemd" ]; then
  as_root systemctl start virtlogd libvirtd
else
  # A virtlogd whose socket is gone (/run cleaned under it) cannot log a
  # starting VM ("Failed to connect socket to '/run/libvirt/virtlogd-sock'"):
  # end it, so that a working one starts.
  if pgrep -x virtlogd >/dev/null && [ ! -S /run/libvirt/virtlogd-sock ]; then
    say "virtlogd runs without its socket: restarting it"
    as_root pkill -x virtlogd
    for _ in $(seq 50); do pgrep -x virtlogd >/dev/null || break; sleep 0.1; done
  fi
  pgrep -x virtlogd >/dev/null || { say "starting virtlogd"; as_root virtlogd -d 8<&-; }
  pgrep -x libvirtd >/dev/null || { say "starting libvirtd"; as_root libvirtd -d 8<&-; changed=; }
fi
wait_up
# A libvirtd started before the settings above has the old socket: restart
# it, once. Running VMs keep running; clients connected now (a vmflow
# run, a virsh) lose their connection.
if [ -n "$changed" ] || ! sock_ok; then
  say "restarting libvirtd for the libvirt group's socket access (root:libvirt 0770)"
  if [ -n "$systemd" ]; then
    if systemctl -q is-active libvirtd.socket; then
      as_root systemctl stop libvirtd.service libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket
      as_root systemctl start libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket libvirtd.service
    else
      as_root systemctl restart libvirtd.service
    fi
  else
    pid=$(pgrep -x libvirtd || true)
    if [ -n "$pid" ]; then
      as_root kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 300); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
      if [ -d "/proc/$pid" ]; then echo "libvirtd ($pid) did not stop within 30 s" >&2; exit 1; fi
    fi
    as_root libvirtd -d 8<&-
  fi
  wait_up
fi
sock_ok || { echo "$sock is $(stat -c '%U:%G %a' "$sock"), not root:libvirt 770: see $conf" >&2; exit 1; }

virsh_() { as_root virsh -q -c qemu:///system "$@"; }
if ! virsh_ net-info default >/dev/null 2>&1; then
  say "defining libvirt's default NAT network"
  virsh_ net-define /usr/share/libvirt/networks/default.xml >/dev/null
  virsh_ net-autostart default >/dev/null
fi
info=$(virsh_ net-info default 2>/dev/null || true)
if ! grep -qE '^Active:\s+yes' <<<"$info"; then
  say "starting libvirt's default NAT network"
  if ! out=$(virsh_ net-start default 2>&1 >/dev/null); then
    echo "$out" >&2
    bridge=$(virsh_ net-dumpxml default 2>/dev/null | sed -n "s/.*<bridge name='\([^']*\)'.*/\1/p")
    if [ -n "$bridge" ] && ip link show "$bridge" >/dev/null 2>&1; then
      echo "The network interface $bridge exists, but libvirt's default network is not running: an earlier libvirt left it. Remove it (ip link delete $bridge) and run this again." >&2
    fi
    exit 1
  fi
fi
say "libvirtd is up ($(virsh -c qemu:///system version 2>/dev/null | awk '/Running hypervisor/ {print $3, $4}'))"

"$(dirname "$0")/test-user.sh"
