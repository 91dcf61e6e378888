#!/usr/bin/env bash
# Where does `vmflow list` spend its time? Reads only; changes nothing.
#
#   1. GODEBUG=inittrace=1 over N runs: median init clock per package, the
#      top packages and the total per module (grpc, protobuf, ...).
#   2. strace -f -c of one run: syscalls and threads.
#   3. page faults and RSS (GNU time), beside a Go hello-world if one is
#      given as HELLO=/path/to/binary.
#
# Env: N (default 50), VMFLOW (default <repo>/bin/vmflow), TOP (default 20).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
N=${N:-50}
TOP=${TOP:-20}
VMFLOW=${VMFLOW:-$repo/bin/vmflow}
[ -x "$VMFLOW" ] || make -C "$repo" build >/dev/null
cd "$here/testdata"
cmd=("$VMFLOW" -f tasks.hcl list)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== 1. package init (GODEBUG=inittrace=1, median of $N runs): ${cmd[*]}"
for i in $(seq "$N"); do
  GODEBUG=inittrace=1 "${cmd[@]}" 2>"$tmp/init.$i" >/dev/null
done
python3 - "$tmp" "$N" "$TOP" <<'EOF'
import glob, re, statistics, sys
tmp, n, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
line = re.compile(r"^init (\S+) @([\d.]+) ms, ([\d.]+) ms clock, (\d+) bytes, (\d+) allocs")
clock, alloc, main_at, totals = {}, {}, [], []
for f in glob.glob(tmp + "/init.*"):
    tot = 0.0
    for l in open(f):
        m = line.match(l)
        if not m:
            continue
        pkg, at, ms, b = m.group(1), float(m.group(2)), float(m.group(3)), int(m.group(4))
        clock.setdefault(pkg, []).append(ms)
        alloc[pkg] = b
        tot += ms
        if pkg == "main":
            main_at.append(at)
    totals.append(tot)
med = {p: statistics.median(v) for p, v in clock.items()}

def module(p):
    parts = p.split("/")
    if "." not in parts[0]:
        return "std (" + ("vendor" if parts[0] == "vendor" else "go") + ")"
    if parts[0] in ("github.com", "gitlab.com") or parts[:2] == ["golang.org", "x"]:
        return "/".join(parts[:3])
    return "/".join(parts[:2])

print(f"packages initialised: {len(med)}; sum of init clock: median {statistics.median(totals):.2f} ms; "
      f"main.init reached at median @{statistics.median(main_at):.2f} ms (inittrace's own printing inflates this)")
print(f"\n{'package':<58} {'median ms':>9} {'bytes':>8}")
for p, v in sorted(med.items(), key=lambda kv: -kv[1])[:top]:
    print(f"{p:<58} {v:>9.3f} {alloc[p]:>8}")
mods = {}
for p, v in med.items():
    m = mods.setdefault(module(p), [0.0, 0, 0])
    m[0] += v; m[1] += 1; m[2] += alloc[p]
print(f"\n{'module':<58} {'ms':>9} {'pkgs':>5} {'bytes':>8}")
for m, (v, k, b) in sorted(mods.items(), key=lambda kv: -kv[1][0])[:12]:
    print(f"{m:<58} {v:>9.3f} {k:>5} {b:>8}")
EOF

echo
echo "== 2. syscalls (strace -f -c, one run)"
if command -v strace >/dev/null; then
  strace -f -c -o "$tmp/strace" "${cmd[@]}" >/dev/null
  head -14 "$tmp/strace"
  strace -f -o "$tmp/strace.f" "${cmd[@]}" >/dev/null
  echo "threads started (clone): $(grep -c 'clone(' "$tmp/strace.f")"
  echo "files opened: $(grep -o 'openat([^"]*"[^"]*"' "$tmp/strace.f" | sed 's/.*"\(.*\)"/\1/' | tr '\n' ' ')"
else
  echo "(strace not installed; bench/setup.sh installs it)"
fi

echo
echo "== 3. memory and page faults (GNU time)"
for c in "${cmd[*]}" ${HELLO:+"$HELLO"}; do
  # shellcheck disable=SC2086  # $c is a command line: split it on purpose
  /usr/bin/time -f "%e s  maxrss=%M kB  minor faults=%R  ctx switches vol=%w invol=%c   $c" $c >/dev/null 2>"$tmp/time" || true
  tail -1 "$tmp/time"
done
echo "binary: $(stat -c %s "$VMFLOW") bytes"
