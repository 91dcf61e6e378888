#!/usr/bin/env bash
# vmflow-network: writes the systemd-networkd configuration of the VM's
# network card from /var/identity.
#
# Usage: network.sh IDENTITY_DIR OUTPUT
#   IDENTITY_DIR  /var/identity
#   OUTPUT        the .network file to write, e.g.
#                 /run/systemd/network/10-vmflow.network
#
# With IDENTITY_DIR/static-ip (one line, an IPv4 address with its prefix,
# e.g. 192.168.122.50/24): that address, the gateway from
# IDENTITY_DIR/gateway (one line, an IPv4 address; missing or empty: the
# network's first address, 192.168.122.1 for the example), and the gateway
# as DNS server (libvirt's networks answer DNS there). Otherwise DHCP.
# Either way DHCP may not change the hostname (modules/identity.nix sets it).
# With IDENTITY_DIR/resolvers (one IPv4 or IPv6 address a line; blank lines
# and # comments ignored): those are the DNS servers, and neither DHCP nor
# router advertisements nor the gateway replace them.
# A malformed file is reported and DHCP (or the first address) used
# instead. Always exits 0 after writing OUTPUT.

dir=$1
out=$2

say() { echo "vmflow-network: $*"; }

# The first line of a file, without spaces; empty if there is none.
first_line() {
  local line=""
  if [ -r "$1" ]; then
    IFS= read -r line <"$1" || true
  fi
  printf '%s' "${line//[[:space:]]/}"
}

# An IPv4 address as a number; fails for anything else.
ip_to_int() {
  local a b c d
  [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
  a=$((10#${BASH_REMATCH[1]})) b=$((10#${BASH_REMATCH[2]}))
  c=$((10#${BASH_REMATCH[3]})) d=$((10#${BASH_REMATCH[4]}))
  ((a <= 255 && b <= 255 && c <= 255 && d <= 255)) || return 1
  echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

int_to_ip() {
  echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"
}

address="" gateway=""
static=$(first_line "$dir/static-ip")
if [ -n "$static" ]; then
  if [[ $static =~ ^([0-9.]+)/([0-9]{1,2})$ ]] && addr_int=$(ip_to_int "${static%/*}") &&
    prefix=$((10#${static#*/})) && ((prefix >= 1 && prefix <= 32)); then
    # Written back normalised: networkd refuses octets with leading zeros.
    address=$(int_to_ip "$addr_int")/$prefix
    gw=$(first_line "$dir/gateway")
    if [ -n "$gw" ]; then
      if gw_int=$(ip_to_int "$gw"); then
        gw=$(int_to_ip "$gw_int")
      else
        say "ignoring the malformed gateway in $dir/gateway: $gw"
        gw=""
      fi
    fi
    if [ -z "$gw" ]; then
      if ((prefix <= 30)); then
        mask=$(((0xffffffff << (32 - prefix)) & 0xffffffff))
        gw=$(int_to_ip $(((addr_int & mask) + 1)))
      else
        say "a /$prefix network has no first address to use as gateway; none set"
      fi
    fi
    gateway=$gw
  else
    say "ignoring the malformed address in $dir/static-ip (want e.g. 192.168.122.50/24): $static"
  fi
fi

resolvers=()
if [ -r "$dir/resolvers" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line//[[:space:]]/}
    [ -z "$line" ] || [ "${line:0:1}" = "#" ] && continue
    if ip_to_int "$line" >/dev/null || [[ $line =~ ^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$ ]]; then
      resolvers+=("$line")
    else
      say "ignoring $line in $dir/resolvers: not an IPv4 or IPv6 address"
    fi
  done <"$dir/resolvers"
fi

mkdir -p "$(dirname "$out")"
{
  echo "# Written at boot by vmflow-network.service from $dir."
  echo "[Match]"
  echo "Type=ether"
  echo "Kind=!*"
  echo
  echo "[Network]"
  if [ -n "$address" ]; then
    echo "Address=$address"
    if [ -n "$gateway" ]; then
      echo "Gateway=$gateway"
      [ "${#resolvers[@]}" -eq 0 ] && echo "DNS=$gateway"
    fi
  else
    echo "DHCP=yes"
  fi
  for r in "${resolvers[@]}"; do
    echo "DNS=$r"
  done
  echo
  echo "[DHCPv4]"
  echo "UseHostname=no"
  if [ "${#resolvers[@]}" -gt 0 ]; then
    echo "UseDNS=no"
    echo
    echo "[DHCPv6]"
    echo "UseDNS=no"
    echo
    echo "[IPv6AcceptRA]"
    echo "UseDNS=no"
  fi
} >"$out.tmp" && mv -f "$out.tmp" "$out"

if [ -n "$address" ]; then
  say "static address $address${gateway:+, gateway $gateway}"
else
  say "DHCP"
fi
if [ "${#resolvers[@]}" -gt 0 ]; then
  say "DNS ${resolvers[*]}"
elif [ -n "$gateway" ]; then
  say "DNS $gateway"
fi
exit 0
