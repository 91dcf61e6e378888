#!/usr/bin/env bash
# Makes the normal user the tests run vmflow as (cmd/vmflow's vm_user.txtar):
# vmflow-test, in the libvirt group, as most people run vmflow. Safe to
# rerun, and to run beside another copy: it only adds what is missing, and
# never removes the user.
set -euo pipefail

user=vmflow-test
say() { printf '==> %s\n' "$*"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "need root (or sudo) to run: $*" >&2; exit 1
  fi
}

if ! getent passwd "$user" >/dev/null; then
  say "adding user $user (for the tests that run vmflow as a normal user)"
  # Another script may add it at the same moment: what counts is that it
  # exists afterwards.
  as_root useradd --create-home --shell /bin/sh --comment "vmflow tests" "$user" ||
    getent passwd "$user" >/dev/null
fi
if getent group libvirt >/dev/null && ! id -nG "$user" | tr ' ' '\n' | grep -qx libvirt; then
  say "adding $user to the libvirt group"
  as_root usermod --append --groups libvirt "$user"
fi
