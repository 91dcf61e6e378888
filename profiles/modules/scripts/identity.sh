#!/usr/bin/env bash
# vmflow-identity: lays out /var and applies /var/identity.
#
# Usage: identity.sh ROOT [HOME OWNER]...
#   ROOT        where the VM's root filesystem is mounted: /sysroot in the
#               initrd, where modules/identity.nix runs it (before systemd
#               of the running system starts); / on a running system
#   HOME OWNER  pairs, one per normal user's home on /var, owners numeric:
#               /var/home/admin 1000:100 /var/home/user 1001:100
#
# It writes below ROOT/var and to the kernel's hostname, nowhere else: the
# root filesystem and /etc are read-only. /etc/machine-id is a link to
# /var/identity/machine-id, so it only has to be right there.
#
# No `set -e`: a problem with one file must not stop the others; each step
# says what it did. It always exits 0, so a bad file never stops the boot.
set +e

root=${1%/}
shift

var=$root/var
dir=$var/identity

say() { echo "vmflow-identity: $*"; }

if [ ! -d "$var" ]; then
  say "no $var: nothing to do"
  exit 0
fi

# --- layout of /var ---------------------------------------------------------
mkdir -p "$dir/ssh" "$var/home" "$var/root"
chown 0:0 "$dir" "$dir/ssh" "$var/home" "$var/root"
chmod 0755 "$dir" "$var/home"
chmod 0700 "$dir/ssh" "$var/root"

users=()
while [ "$#" -ge 2 ]; do
  home=$root$1 owner=$2
  shift 2
  users+=("${home##*/}")
  if [ ! -d "$home" ]; then
    if mkdir -m 0700 "$home" && chown "$owner" "$home"; then
      say "created ${home#"$root"}"
    else
      say "could not create ${home#"$root"}"
    fi
  fi
done

# --- machine-id -------------------------------------------------------------
# Kept on /var so journals, DHCP client ids and the like stay the same for
# the life of the VM, across reboots and image upgrades.
mid=""
if [ -r "$dir/machine-id" ]; then
  read -r mid <"$dir/machine-id" || true
fi
raw=$mid
mid=${mid,,}
if [[ $mid =~ ^[0-9a-f]{32}$ ]] && [ "$mid" != 00000000000000000000000000000000 ]; then
  if [ "$raw" != "$mid" ]; then
    # machine-id(5) wants lower case.
    printf '%s\n' "$mid" >"$dir/machine-id.new" && mv -f "$dir/machine-id.new" "$dir/machine-id"
  fi
  # vmflow may have written it with another owner or mode.
  chown 0:0 "$dir/machine-id"
  chmod 0444 "$dir/machine-id"
else
  [ -n "$mid" ] && say "ignoring the malformed machine-id in /var/identity/machine-id"
  read -r uuid </proc/sys/kernel/random/uuid
  mid=${uuid//-/}
  if printf '%s\n' "$mid" >"$dir/machine-id.new" &&
    chmod 0444 "$dir/machine-id.new" &&
    mv -f "$dir/machine-id.new" "$dir/machine-id"; then
    say "made a new machine-id"
  else
    say "could not save a new machine-id in /var/identity"
  fi
fi

# --- hostname ---------------------------------------------------------------
# The kernel's hostname; /etc/hostname does not exist, so systemd keeps it.
name=""
if [ -r "$dir/hostname" ]; then
  read -r name <"$dir/hostname" || true
fi
if ! [[ $name =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$ ]]; then
  [ -n "$name" ] && say "ignoring the invalid hostname in /var/identity/hostname"
  name=vmflow
fi
if printf '%s' "$name" >/proc/sys/kernel/hostname; then
  say "hostname $name"
else
  say "could not set the hostname to $name"
fi

# --- SSH --------------------------------------------------------------------
# sshd (StrictModes) ignores a key file that others can write, and a host
# key that is not root's alone.
if [ -e "$dir/authorized_keys" ]; then
  chown 0:0 "$dir/authorized_keys"
  chmod 0644 "$dir/authorized_keys"
else
  say "no /var/identity/authorized_keys: nobody can log in over SSH yet"
fi
for key in "$dir"/ssh/ssh_host_*_key; do
  [ -f "$key" ] || continue
  chown 0:0 "$key"
  chmod 0600 "$key"
  if [ -f "$key.pub" ]; then
    chown 0:0 "$key.pub"
    chmod 0644 "$key.pub"
  fi
done

# --- passwords --------------------------------------------------------------
# userborn reads each normal user's password hash from
# /var/identity/passwords/<user> at every boot (core.nix): root's alone, and
# "!" (no password: key logins only) where vmflow has set none, so a
# missing file never stops the accounts from being made.
mkdir -p "$dir/passwords"
chown 0:0 "$dir/passwords"
chmod 0700 "$dir/passwords"
for u in "${users[@]}"; do
  f=$dir/passwords/$u
  if [ ! -s "$f" ]; then
    printf '!\n' >"$f"
  fi
done
for f in "$dir"/passwords/*; do
  [ -f "$f" ] || continue
  chown 0:0 "$f"
  chmod 0600 "$f"
done

exit 0
