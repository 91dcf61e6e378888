#!/usr/bin/env bash
# `make bench` runs this: install the comparison tools if missing, then
# the one-command comparisons of issue 15 (commands.sh: status and
# snapshots against virsh, list against just, plugin start), printed as
# one table, then flat.sh's (issue 15's goal 4: costs as /var, the number
# of VMs and the number of records grow; FLAT=0 leaves it out, it takes
# minutes). LIST=1 also runs list.sh (vmflow, just and task, hyperfine).
# See bench/README.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/setup.sh"
echo
if [ "${LIST:-0}" = 1 ]; then
  "$here/list.sh"
  echo
fi
"$here/commands.sh" "$@"
if [ "${FLAT:-1}" = 1 ]; then
  echo
  "$here/flat.sh"
fi
