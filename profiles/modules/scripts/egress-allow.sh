#!/usr/bin/env bash
# vmflow-egress-allow: loads the egress allow-list into nftables.
#
# Usage: egress-allow.sh FILE TABLE
#   FILE   one CIDR (or bare address) a line; `#` starts a comment
#   TABLE  the nftables table holding the sets allow4 and allow6,
#          e.g. "inet vmflow-egress"
#
# The sets are emptied first, so the file is the whole truth after each run.
# A malformed line is reported and skipped; the others still load. A missing
# file means nothing is let through beyond DNS, DHCP and replies.

file=$1
read -r -a table <<<"$2"

nft flush set "${table[@]}" allow4 || exit 1
nft flush set "${table[@]}" allow6 || exit 1

if [ ! -e "$file" ]; then
  echo "no $file: private ranges stay blocked"
  exit 0
fi

loaded=0 skipped=0 n=0
while IFS= read -r line || [ -n "$line" ]; do
  n=$((n + 1))
  line=${line%%#*}
  line=${line//[[:space:]]/}
  [ -z "$line" ] && continue
  if [[ $line =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}(/[0-9]{1,2})?$ ]]; then
    set=allow4
  elif [[ $line =~ ^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(/[0-9]{1,3})?$ ]]; then
    set=allow6
  else
    echo "$file:$n: not a CIDR, skipped: $line" >&2
    skipped=$((skipped + 1))
    continue
  fi
  if nft add element "${table[@]}" "$set" "{ $line }"; then
    loaded=$((loaded + 1))
  else
    echo "$file:$n: nft refused $line, skipped" >&2
    skipped=$((skipped + 1))
  fi
done <"$file"

echo "allowed $loaded network(s) from $file; skipped $skipped"
exit 0
