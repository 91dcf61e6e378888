#!/usr/bin/env bash
# vmflow-egress-dns: lets DNS through the egress block to the VM's own
# resolvers, and to no other host in a blocked network.
#
# Usage: egress-dns.sh FILE TABLE
#   FILE   a resolv.conf; its `nameserver` lines are the resolvers. In the
#          VM: /run/systemd/resolve/resolv.conf, where systemd-resolved
#          lists the servers it was given (the gateway from
#          /var/identity/gateway, or DHCP's), never its own 127.0.0.53
#   TABLE  the nftables table holding the sets dns4 and dns6,
#          e.g. "inet vmflow-egress"
#
# The sets are emptied first, so after each run they hold exactly the file's
# resolvers (plus nothing: resolvers fixed at build time are elements of
# the table itself and come back when nftables reloads it; see
# modules/egress-block.nix). Loopback resolvers are skipped: loopback is
# never blocked. A missing file leaves the sets empty.

file=$1
read -r -a table <<<"$2"

nft flush set "${table[@]}" dns4 || exit 1
nft flush set "${table[@]}" dns6 || exit 1

if [ ! -e "$file" ]; then
  echo "no $file: DNS only to the resolvers fixed at build time"
  exit 0
fi

loaded=0 skipped=0
while read -r key addr _; do
  [ "$key" = nameserver ] || continue
  addr=${addr%%%*} # fe80::1%eth0: the zone is not part of the address
  case $addr in
  127.* | ::1) continue ;;
  *:*) set=dns6 ;;
  *.*.*.*) set=dns4 ;;
  *)
    echo "$file: not an address, skipped: $addr" >&2
    skipped=$((skipped + 1))
    continue
    ;;
  esac
  if nft add element "${table[@]}" "$set" "{ $addr }"; then
    loaded=$((loaded + 1))
  else
    echo "$file: nft refused $addr, skipped" >&2
    skipped=$((skipped + 1))
  fi
done <"$file"

echo "DNS allowed to $loaded resolver(s) from $file; skipped $skipped"
exit 0
