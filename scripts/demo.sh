#!/usr/bin/env bash
# `make demo`: runs the default task file's demo with the freshly built
# binaries, showing list, plan, a run, its journal and a clean failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"
export VMFLOW_STATE_DIR="${VMFLOW_STATE_DIR:-$PWD/.cache/demo-state}"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step vmflow list
step vmflow plan greet world --times 2
step vmflow greet world --times 2
step vmflow greet world --var greeting_style=loud
step vmflow runs --limit 3
printf '\n\033[1m$ vmflow greet world --times 0\033[0m   # a step fails; nothing is left behind\n'
if vmflow greet world --times 0; then echo "expected a failure" >&2; exit 1; fi
printf '\nThe demo ran; state (journals, logs) is in %s\n' "$VMFLOW_STATE_DIR"
