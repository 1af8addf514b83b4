#!/usr/bin/env bash
# CUDA compiler launcher: runs nvcc (called with -Xptxas=-v), and fails the compile when ptxas
# reports register spills for a kernel that spill_allowlist.txt does not list with a reason.
# Usage (set by NanochatWarnings.cmake): check_spills.sh <allowlist> <nvcc> <args...>
set -u
allowlist=$1; shift
log=$(mktemp); trap 'rm -f "$log"' EXIT
"$@" 2>"$log"; status=$?
# ptxas -v is chatty: pass everything else through, keep its info lines out of the build log.
grep -v -E '^ptxas info|^[[:space:]]+[0-9]+ bytes stack frame|^[[:space:]]+Used [0-9]+ registers' "$log" >&2
[ $status -eq 0 ] || exit $status
awk -v allowlist="$allowlist" '
  BEGIN {
    while ((getline line < allowlist) > 0) {
      if (line ~ /^[[:space:]]*(#|$)/) continue
      split(line, f, /[[:space:]]+/)
      if (length(line) <= length(f[1]) + 1) { print "spill_allowlist.txt: entry " f[1] " has no reason" > "/dev/stderr"; bad = 1 }
      allowed[f[1]] = 1
    }
  }
  /Function properties for/ { fn = $NF }
  /bytes spill stores/ {
    stores = $5; loads = $9
    if ((stores > 0 || loads > 0) && !(fn in allowed)) {
      printf "error: kernel %s spills (%d bytes stores, %d bytes loads); fix it or list it in cmake/spill_allowlist.txt with a reason\n", fn, stores, loads > "/dev/stderr"
      bad = 1
    }
  }
  END { exit bad }' "$log"
