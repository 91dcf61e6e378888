#!/usr/bin/env bash
# Makes Debian's nix-bin (installed by deps.sh) ready for vmflow's nix
# tests, the way Debian's nix-setup-systemd package would, but without
# needing systemd:
#   - build users: group nixbld with nixbld1..10 (the daemon builds as them),
#   - group nix-users, the only one that may open the daemon's socket
#     (/nix/var/nix/daemon-socket is root:nix-users 0770),
#   - the nix-daemon, without the sandbox as that package's nix.conf has it
#     (vmflow's test flake builds with the host's /bin/sh and qemu-img):
#     through systemd when systemd runs, else started here in the
#     background (log: /var/log/vmflow-nix-daemon.log),
#   - the user vmflow-test, in nix-users, that the tests run nix as.
# Safe to rerun: it only adds what is missing, never deletes a user, and
# leaves /etc/nix alone.
set -euo pipefail

say() { printf '==> %s\n' "$*"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "need root (or sudo) to run: $*" >&2; exit 1
  fi
}

command -v nix >/dev/null || { echo "nix is not installed (apt-get install nix-bin)" >&2; exit 1; }
nologin=$(command -v nologin || echo /usr/sbin/nologin)

# Build users, named and made as Debian's nix-setup-systemd makes them.
getent group nix-users >/dev/null || { say "adding group nix-users"; as_root groupadd --system nix-users; }
getent group nixbld >/dev/null || { say "adding group nixbld"; as_root groupadd --system nixbld; }
made=()
for n in $(seq 1 10); do
  if ! id "nixbld$n" >/dev/null 2>&1; then
    as_root useradd --system --comment "Nix build user $n" --home-dir /var/empty \
      --gid nixbld --groups nixbld --no-user-group --shell "$nologin" "nixbld$n"
    made+=("nixbld$n")
  fi
done
[ ${#made[@]} -eq 0 ] || say "added build users ${made[0]}..${made[-1]}"

# The normal user the tests run nix (and vmflow) as, in nix-users.
"$(dirname "$0")/test-user.sh"

# The daemon's socket directory: open to root and nix-users only.
sockdir=/nix/var/nix/daemon-socket
if [ "$(stat -c '%U:%G %a' "$sockdir" 2>/dev/null)" != "root:nix-users 770" ]; then
  as_root mkdir -p "$sockdir"
  as_root chown root:nix-users "$sockdir"
  as_root chmod 0770 "$sockdir"
fi

# Does a daemon answer? Asked as this user first (root, or a member of
# nix-users), so that a rerun with everything in place needs no sudo.
ping_daemon() {
  nix --extra-experimental-features nix-command store ping --store daemon >/dev/null 2>&1 ||
    as_root nix --extra-experimental-features nix-command store ping --store daemon >/dev/null 2>&1
}
pidfile=/run/vmflow-nix-daemon.pid
systemd=false
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemd=true; fi

if ! ping_daemon; then
  if $systemd; then
    if systemctl cat nix-daemon.service >/dev/null 2>&1; then
      say "starting nix-daemon (systemd)"
      as_root systemctl start nix-daemon.socket nix-daemon.service
    else
      say "starting nix-daemon (systemd unit vmflow-nix-daemon)"
      as_root systemctl reset-failed vmflow-nix-daemon.service >/dev/null 2>&1 || true
      as_root systemd-run --quiet --unit=vmflow-nix-daemon --description="Nix daemon (vmflow scripts/nix-setup.sh)" \
        --property=KillMode=process "$(command -v nix-daemon)" --option sandbox false
    fi
  else
    say "starting nix-daemon (no systemd: in the background, log /var/log/vmflow-nix-daemon.log)"
    # A socket left by a daemon that died would refuse connections.
    as_root rm -f "$sockdir/socket"
    as_root bash -c 'setsid "$1" --option sandbox false </dev/null >>/var/log/vmflow-nix-daemon.log 2>&1 & echo $! >"$2"' \
      _ "$(command -v nix-daemon)" "$pidfile"
  fi
  for _ in $(seq 100); do ping_daemon && break; sleep 0.1; done
  ping_daemon || { echo "nix-daemon did not come up (no answer on $sockdir/socket)" >&2; exit 1; }
fi
say "nix $(nix --version | awk '{print $NF}') is set up: build users nixbld1..10, nix-daemon on $sockdir/socket (for root and group nix-users)"
