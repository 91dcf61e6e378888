#!/usr/bin/env bash
# Makes the normal user the tests run vmflow as (cmd/vmflow's vm_user.txtar,
# plugins/nix's mode tests): vmflow-test, in the libvirt and nix-users
# groups, as most people run vmflow. Safe to
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
# The groups a normal user needs: libvirt (libvirtd's socket, made by
# services.sh) and nix-users (the nix-daemon's socket, made by
# nix-setup.sh), each once it exists.
for group in libvirt nix-users; do
  if getent group "$group" >/dev/null && ! id -nG "$user" | tr ' ' '\n' | grep -qx "$group"; then
    say "adding $user to the $group group"
    as_root usermod --append --groups "$group" "$user"
  fi
done
