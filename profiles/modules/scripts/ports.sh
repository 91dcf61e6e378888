#!/usr/bin/env bash
# vmflow-ports: opens the VM's inbound ports listed in /var/identity.
#
# Usage: ports.sh IDENTITY_DIR TABLE
#   IDENTITY_DIR  /var/identity
#   TABLE         the firewall's nftables table, "inet nixos-fw"
#
# IDENTITY_DIR/tcp-ports and IDENTITY_DIR/udp-ports hold one port (22) or
# range (8000-8010) a line; blank lines and lines starting with # are
# ignored, anything else is reported and skipped. The sets vmflow_tcp and
# vmflow_udp of TABLE (modules/ports.nix) are replaced in one nft
# transaction, so a reload never leaves a port half open. A missing file
# opens nothing beyond what the image opens (SSH). Exits non-zero only
# when nft refuses the change.

dir=$1
table=$2

say() { echo "vmflow-ports: $*"; }

# The valid entries of a ports file, comma-separated.
entries() {
  local file=$1 line out="" lo hi
  if [ -r "$file" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      line=${line//[[:space:]]/}
      [ -z "$line" ] || [ "${line:0:1}" = "#" ] && continue
      if [[ $line =~ ^([0-9]{1,5})(-([0-9]{1,5}))?$ ]]; then
        lo=$((10#${BASH_REMATCH[1]}))
        hi=$lo
        [ -n "${BASH_REMATCH[3]}" ] && hi=$((10#${BASH_REMATCH[3]}))
        if ((lo >= 1 && hi <= 65535 && lo <= hi)); then
          if ((lo == hi)); then out+="${out:+, }$lo"; else out+="${out:+, }$lo-$hi"; fi
          continue
        fi
      fi
      # stderr: stdout is the list.
      say "skipping $line in $file: not a port (1-65535) or a range of them" >&2
    done <"$file"
  fi
  printf '%s' "$out"
}

tcp=$(entries "$dir/tcp-ports")
udp=$(entries "$dir/udp-ports")

{
  echo "flush set $table vmflow_tcp"
  echo "flush set $table vmflow_udp"
  [ -n "$tcp" ] && echo "add element $table vmflow_tcp { $tcp }"
  [ -n "$udp" ] && echo "add element $table vmflow_udp { $udp }"
} | nft -f - || {
  say "nft refused the ports (TCP: ${tcp:-none}; UDP: ${udp:-none})"
  exit 1
}
say "open: TCP ${tcp:-none beyond SSH}; UDP ${udp:-none}"
exit 0
