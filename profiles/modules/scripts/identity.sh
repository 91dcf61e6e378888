#!/usr/bin/env bash
# vmflow-identity: lays out /var and applies /var/identity.
#
# Runs once per boot from boot.postBootCommands: in stage 2, after NixOS'
# activation (so accounts exist) and before systemd starts (so systemd
# reads the hostname and machine-id written here, and /home and /root are
# mounted after their sources exist). /var is already mounted (initrd).
#
# Arguments: pairs DIR OWNER, one per normal user's home on /var, e.g.
#   /var/home/admin 1000:users /var/home/user 1001:users
#
# No `set -e`: a problem with one file must not stop the others; each step
# says what it did.

dir=/var/identity

say() { echo "vmflow-identity: $*"; }

# --- layout of /var ---------------------------------------------------------
mkdir -p "$dir/ssh" /var/home /var/root
chown root:root "$dir" "$dir/ssh" /var/home /var/root
chmod 0755 "$dir" /var/home
chmod 0700 "$dir/ssh" /var/root

while [ "$#" -ge 2 ]; do
  home=$1 owner=$2
  shift 2
  if [ ! -d "$home" ]; then
    if mkdir -m 0700 "$home" && chown "$owner" "$home"; then
      say "created $home"
    else
      say "could not create $home"
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
mid=${mid,,}
if ! [[ $mid =~ ^[0-9a-f]{32}$ ]] || [ "$mid" = 00000000000000000000000000000000 ]; then
  [ -n "$mid" ] && say "ignoring the malformed $dir/machine-id"
  read -r uuid </proc/sys/kernel/random/uuid
  mid=${uuid//-/}
  if printf '%s\n' "$mid" >"$dir/machine-id.new" &&
    chmod 0444 "$dir/machine-id.new" &&
    mv -f "$dir/machine-id.new" "$dir/machine-id"; then
    say "made a new machine-id"
  else
    say "could not save the new machine-id; it will change at the next boot"
  fi
fi
rm -f /etc/machine-id
printf '%s\n' "$mid" >/etc/machine-id
chmod 0444 /etc/machine-id

# --- hostname ---------------------------------------------------------------
name=""
if [ -r "$dir/hostname" ]; then
  read -r name <"$dir/hostname" || true
fi
if ! [[ $name =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$ ]]; then
  [ -n "$name" ] && say "ignoring the invalid hostname in $dir/hostname"
  name=vmflow
fi
rm -f /etc/hostname
printf '%s\n' "$name" >/etc/hostname
printf '%s' "$name" >/proc/sys/kernel/hostname
say "hostname $name"

# --- authorized keys --------------------------------------------------------
# sshd (StrictModes) ignores a key file that others can write.
if [ -e "$dir/authorized_keys" ]; then
  chown root:root "$dir/authorized_keys"
  chmod 0644 "$dir/authorized_keys"
else
  say "no $dir/authorized_keys: nobody can log in over SSH yet"
fi

exit 0
