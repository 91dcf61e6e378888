#!/usr/bin/env bash
# Install the tools the benchmarks compare vmflow with, outside the project,
# and print their versions. Idempotent: whatever is already there is kept.
#
#   just      npm package rust-just (ships the native Rust binary)
#   task      go-task, built with `go install`
#   hyperfine Debian package (and strace, used by profile.sh)
#
# Everything lands in $BENCH_BIN (default ~/.local/bin): `task` directly,
# `just` as a symlink to the native binary inside the npm package, so the
# benchmark never times the Node.js wrapper that npm puts on PATH.
#
# Env: BENCH_BIN, JUST_VERSION (default 1.57.0), TASK_VERSION (default 3.54.0).
set -euo pipefail

BENCH_BIN=${BENCH_BIN:-$HOME/.local/bin}
JUST_VERSION=${JUST_VERSION:-1.57.0}
TASK_VERSION=${TASK_VERSION:-3.54.0}
export PATH="/usr/local/go/bin:$PATH"
mkdir -p "$BENCH_BIN"

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- apt: hyperfine, strace -------------------------------------------------
missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v strace >/dev/null || missing+=(strace)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
command -v python3 >/dev/null || { echo "setup: python3 is required (list.sh reads hyperfine's JSON with it)" >&2; exit 1; }

# --- just (npm: rust-just) --------------------------------------------------
# rust-just's bin is a Node script that spawns the real binary from the
# optional dependency rust-just-linux-<arch>; find that binary.
native_just() {
  local root arch
  root=$(npm root -g)
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
  esac
  for p in "$root/rust-just/node_modules/rust-just-linux-$arch/bin/just" \
           "$root/rust-just-linux-$arch/bin/just"; do
    [ -x "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}
have_just=""
if j=$(native_just 2>/dev/null) && [ "$("$j" --version)" = "just $JUST_VERSION" ]; then
  have_just=$j
fi
if [ -z "$have_just" ]; then
  command -v npm >/dev/null || { echo "setup: npm is required for just (rust-just)" >&2; exit 1; }
  echo "setup: npm install -g rust-just@$JUST_VERSION"
  npm install -g --no-fund --no-audit "rust-just@$JUST_VERSION" >/dev/null
  have_just=$(native_just) || { echo "setup: rust-just installed but its native binary was not found" >&2; exit 1; }
fi
ln -sfn "$have_just" "$BENCH_BIN/just"

# --- task (go-task) ---------------------------------------------------------
if ! { [ -x "$BENCH_BIN/task" ] && [ "$("$BENCH_BIN/task" --version 2>/dev/null)" = "$TASK_VERSION" ]; }; then
  echo "setup: go install github.com/go-task/task/v3/cmd/task@v$TASK_VERSION"
  GOBIN="$BENCH_BIN" go install "github.com/go-task/task/v3/cmd/task@v$TASK_VERSION"
fi

# --- versions ---------------------------------------------------------------
echo "just      $("$BENCH_BIN/just" --version | awk '{print $2}')  ($BENCH_BIN/just -> $have_just)"
echo "task      $("$BENCH_BIN/task" --version)  ($BENCH_BIN/task)"
echo "hyperfine $(hyperfine --version | awk '{print $2}')  ($(command -v hyperfine))"
echo "strace    $(strace -V | awk 'NR==1{print $4}')"
echo "python3   $(python3 --version | awk '{print $2}')"
echo "go        $(go env GOVERSION)"
