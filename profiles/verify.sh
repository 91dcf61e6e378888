#!/usr/bin/env bash
# `cond && pass … || fail …` below: pass always succeeds, so fail runs
# only when cond failed.
# shellcheck disable=SC2015
# What needs a machine with internet access: build an image, pin the flake,
# boot a VM from it and check the read-only root and the identity. Prints
# one PASS or FAIL line per check and exits 1 if any failed.
#
# Needs: Nix with flakes (2.4+), KVM, internet access, and vmflow with its
# libvirt backend working (`make deps build`, bin/ on PATH). Run from the
# repository:
#
#   profiles/verify.sh            # image `dev`, VM `verify-profiles`
#   VERIFY_PROFILES=claude profiles/verify.sh   # also the egress block and npm units
#
# It writes profiles/flake.lock (commit it) and purges the VM at the end
# (VERIFY_KEEP=1 keeps it).
set -u
cd "$(dirname "$0")/.." || exit 1

name=${VERIFY_NAME:-verify-profiles}
profiles=${VERIFY_PROFILES:-dev}
nixf=(--extra-experimental-features 'nix-command flakes')
failed=0

pass() { printf 'PASS %s\n' "$1"; }
fail() {
  printf 'FAIL %s: %s\n' "$1" "$2"
  failed=1
}
# check NAME COMMAND...: PASS when the command succeeds.
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$what"; else fail "$what" "$(printf '%s' "$out" | tail -n 3)"; fi
}
# in_vm COMMAND...: run it in the VM through the guest agent, print stdout.
in_vm() {
  local IFS=,
  vmflow --yes --json exec "$name" "--command=$*" |
    sed -n 's/.*"stdout":"\(.*\)".*/\1/p' | tail -n 1 | sed 's/\\n/\n/g; s/\\t/\t/g'
}

# 1. The lock file: the exact nixpkgs and home-manager revisions.
check "flake.lock written" nix "${nixf[@]}" flake lock ./profiles
check "flake.lock pins nixpkgs and home-manager" \
  grep -q '"home-manager"' profiles/flake.lock

# 2. The image.
check "nix build ./profiles#dev" nix "${nixf[@]}" build ./profiles#dev -o result-verify
check "the image is a qcow2 file" test -s result-verify/nixos.qcow2
check "the unified kernel image is there" test -s result-verify/uki.efi

# 3. A VM from it.
if ! out=$(vmflow --yes create --name="$name" --profiles="$profiles" 2>&1); then
  fail "vmflow create $name ($profiles)" "$(printf '%s' "$out" | tail -n 5)"
  exit 1
fi
pass "vmflow create $name ($profiles)"
trap '[ -n "${VERIFY_KEEP:-}" ] || vmflow --yes purge "$name" >/dev/null' EXIT
sleep 20 # let the boot settle (units still starting count as "starting")

opts=$(in_vm findmnt -n -o OPTIONS /)
case $opts in ro | ro,*) pass "findmnt /: mounted ro ($opts)" ;; *) fail "findmnt /" "options '$opts'" ;; esac

state=$(in_vm systemctl is-system-running)
[ "$state" = running ] && pass "systemctl is-system-running: running" ||
  fail "systemctl is-system-running" "$state; failed units: $(in_vm systemctl --failed --no-legend --plain)"

writes=$(in_vm journalctl -b --no-pager -o cat --grep 'Read-only file system|EROFS|read-only')
[ -z "$writes" ] && pass "journalctl -b: no write to the read-only /" || fail "journalctl -b" "$writes"

id_link=$(in_vm readlink /etc/machine-id)
[ "$id_link" = /var/identity/machine-id ] && pass "/etc/machine-id is one link to /var/identity/machine-id" ||
  fail "/etc/machine-id" "links to '$id_link'"
mid=$(in_vm cat /etc/machine-id)
[ -n "$mid" ] && [ "$mid" = "$(in_vm cat /var/identity/machine-id)" ] &&
  pass "machine-id from /var/identity ($mid)" || fail "machine-id" "'$mid'"
host=$(in_vm hostname)
want=$(in_vm cat /var/identity/hostname)
[ -n "$host" ] && [ "$host" = "${want:-vmflow}" ] && pass "hostname from /var/identity ($host)" ||
  fail "hostname" "'$host', /var/identity/hostname '$want'"
check "SSH host keys on /var/identity/ssh" test -n "$(in_vm ls /var/identity/ssh/ssh_host_ed25519_key)"
check "vmflow-identity ran in the initrd" test -n "$(in_vm journalctl -b --no-pager -o cat --grep 'vmflow-identity: hostname')"
check "/etc is read-only" test -n "$(in_vm findmnt -n -o OPTIONS /etc | grep -E '(^|,)ro(,|$)')"

case " ${profiles//,/ } " in
*" claude "* | *" open-code "*)
  check "the egress table is loaded" test -n "$(in_vm nft list table inet vmflow-egress)"
  check "DNS resolvers loaded into dns4/dns6" test -n "$(in_vm nft list set inet vmflow-egress dns4 | grep -E 'elements')"
  unit=vmflow-npm-claude-user
  case " ${profiles//,/ } " in *" claude "*) ;; *) unit=vmflow-npm-opencode-user ;; esac
  sleep 60
  check "$unit installed the CLI" test "$(in_vm systemctl is-active "$unit")" = active
  ;;
esac

exit "$failed"
