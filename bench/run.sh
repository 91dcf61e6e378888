#!/usr/bin/env bash
# `make bench` runs this: install the comparison tools if missing, then the
# list benchmark. See bench/README.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/setup.sh"
echo
exec "$here/list.sh" "$@"
