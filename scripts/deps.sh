#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a Debian or Ubuntu
# machine, and starts what must run. Safe to rerun: it only installs what is
# missing. Uses apt-get as root, or through sudo.
set -euo pipefail

say() { printf '==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "need root (or sudo) to run: $*" >&2; exit 1
  fi
}

# apt packages this project needs, with a command (or file) that proves each
# one is there.
need=()
want() { # want PACKAGE CHECK...
  local pkg=$1; shift
  for check in "$@"; do
    if [ "${check#/}" != "$check" ]; then [ -e "$check" ] && return 0
    else command -v "$check" >/dev/null 2>&1 && return 0
    fi
  done
  need+=("$pkg")
}

want git git
want make make
want ca-certificates /etc/ssl/certs/ca-certificates.crt
# The libvirt backend and the VM tests: a real libvirtd with QEMU, disk
# tools, UEFI firmware, NAT networking, and what the test guest is made of.
want libvirt-daemon-system libvirtd
want libvirt-clients virsh
want qemu-system-x86 qemu-system-x86_64
want qemu-utils qemu-img
want e2fsprogs mke2fs
want ovmf /usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_CODE.fd
want busybox-static /bin/busybox
want dnsmasq-base dnsmasq
want iptables iptables
# The nix plugin builds images with the real nix (Debian's nix-bin).
want nix-bin nix
# profiles/'s egress test loads the generated nftables ruleset into network
# namespaces joined by veth pairs.
want nftables nft /usr/sbin/nft
want iproute2 ip /usr/sbin/ip /sbin/ip
# The remote-libvirt tests reach libvirtd through a real sshd that they run
# on 127.0.0.1 with a config and keys of their own (internal/testssh); the
# machine's sshd is not used (Debian enables and starts it when it installs
# openssh-server; the tests need neither).
want openssh-server /usr/sbin/sshd
want openssh-client ssh-keygen ssh-keyscan

if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Go: the machines this is built on have it in /usr/local/go. go.mod asks for
# Go 1.26; an older go (1.21+) fetches that toolchain by itself.
export PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null; then
  say "installing Go from the distribution (it will fetch the 1.26 toolchain)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go
fi
go version >/dev/null || { echo "Go does not work; install Go 1.26 into /usr/local/go" >&2; exit 1; }
say "$(go version)"

# nix's build users, its daemon and the test user (scripts/nix-setup.sh).
"$(dirname "$0")/nix-setup.sh"
"$(dirname "$0")/services.sh"
