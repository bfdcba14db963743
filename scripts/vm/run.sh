#!/usr/bin/env bash
# Runs one shell script inside a Linux kernel with SocketCAN (vcan0, vcan1 with FD) under QEMU, and returns its exit status.
#   scripts/vm/run.sh SCRIPT OUTPUT [TIMEOUT_S]
# SCRIPT and OUTPUT are absolute host paths (the VM sees the host root at /). OUTPUT receives the script's stdout+stderr,
# OUTPUT.console the kernel console. The VM is killed after TIMEOUT_S seconds (default 600) and the exit status is then 124.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
script=$1 out=$2 limit=${3:-600}
case "$script$out" in *" "*) echo "vm: paths must not contain spaces" >&2; exit 2 ;; esac
bash "$here/build.sh"
rm -f "$out" "$out.rc"
# -accel tcg: KVM is not usable on these machines; one vCPU by default so parallel work on the host keeps a core
# (VGW_VM_SMP=2 gives the VM two, for benchmarks of multi-threaded receive; with TCG each vCPU is a host thread).
smp=${VGW_VM_SMP:-1}
case "$smp" in [1-9]) ;; *) echo "vm: VGW_VM_SMP must be 1-9, got '$smp'" >&2; exit 2 ;; esac
timeout --kill-after=5 "$limit" qemu-system-x86_64 -accel tcg -m 1024 -smp "$smp" -nographic -no-reboot \
  -kernel "$root/.vm/vmlinuz" -initrd "$root/.vm/initramfs.cpio.gz" \
  -append "console=ttyS0 quiet panic=-1 vgw.run=$script vgw.out=$out" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,multidevs=remap \
  -nic none >"$out.console" 2>&1 </dev/null || { rc=$?; [ "$rc" = 124 ] && { echo "vm: timed out after ${limit}s" >&2; exit 124; }; }
[ -s "$out.rc" ] || { echo "vm: the script did not finish; console in $out.console" >&2; tail -20 "$out.console" >&2; exit 1; }
exit "$(cat "$out.rc")"
