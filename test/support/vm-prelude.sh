# Sourced by the scripts that run inside the test VM (test/*/in-vm.sh): `vgw` on PATH and the readiness wait.
# Expects VGW (the repo root, as the VM sees it) and R (the results directory); leaves the shell in $VGW.
cd "$VGW" || exit 1
# `vgw` as a command (not a function) so `timeout` can run it.
printf '#!/bin/sh\nexec node "%s/bin/vgw" "$@"\n' "$VGW" >"$R/vgw" && chmod +x "$R/vgw"
PATH="$R:$PATH"
# wait_for FILE PATTERN SECONDS: until FILE contains PATTERN (a started command reporting it is listening).
wait_for() {
  n=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    n=$((n + 1)); [ $n -gt $(($3 * 10)) ] && { echo "wait_for: '$2' not in $1 after $3 s" >&2; return 1; }
    sleep 0.1
  done
}
