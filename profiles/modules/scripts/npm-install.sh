#!/usr/bin/env bash
# vmflow-npm-install PACKAGE [COMMAND]
#
# Installs an npm package globally into the caller's own prefix on /var
# ($NPM_CONFIG_PREFIX, by default ~/.npm-global; homes live on /var/home),
# once: with COMMAND given, nothing is done when $prefix/bin/COMMAND exists.
# Two logins at the same time do not install twice (a lock in the prefix).
# modules/npm-cli.nix runs it in a unit per tool and user
# (vmflow-npm-<name>-<user>.service); it can be rerun by hand. npm gets
# VMFLOW_NPM_TIMEOUT seconds (default 900).

if [ "$#" -lt 1 ] || [ -z "$1" ]; then
  echo "usage: vmflow-npm-install PACKAGE [COMMAND]" >&2
  exit 2
fi
package=$1
command_name=${2:-}
prefix=${NPM_CONFIG_PREFIX:-$HOME/.npm-global}
export NPM_CONFIG_PREFIX=$prefix

mkdir -p "$prefix/bin" "$prefix/lib" || exit 1
exec 9>"$prefix/.vmflow-install.lock" || exit 1
limit=${VMFLOW_NPM_TIMEOUT:-900}
if ! flock -w "$limit" 9; then
  echo "vmflow: another install into $prefix is still running" >&2
  exit 1
fi
if [ -n "$command_name" ] && [ -x "$prefix/bin/$command_name" ]; then
  exit 0
fi

echo "vmflow: installing $package into $prefix (once; npm may take a minute)..." >&2
if timeout "$limit" npm install --global --no-fund --no-audit --loglevel=error "$package" >&2; then
  echo "vmflow: $package installed" >&2
else
  status=$?
  echo "vmflow: installing $package failed (exit $status); its unit retries; by hand: vmflow-npm-install $package${command_name:+ $command_name}" >&2
  exit "$status"
fi
