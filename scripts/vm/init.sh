#!/bin/busybox sh
# /init of the test VM: load virtio, 9p and CAN modules, mount the host's root (shared read-write over 9p), chroot into it,
# create vcan0 (classic MTU) and vcan1 (CAN FD MTU), run the script named by `vgw.run=` on the kernel command line with its
# output in `vgw.out=`, record its exit status in `<out>.rc`, and power off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# The package has no modules.dep: load in a rough order and retry what failed until nothing more loads.
pending=$(cat /modules/order)
for pass in 1 2 3 4; do
  left=
  for m in $pending; do insmod /modules/$m 2>/dev/null || left="$left $m"; done
  pending=$left
  [ -z "$pending" ] && break
done
[ -n "$pending" ] && echo "vm: could not load:$pending" >&2
run=; out=
for a in $(cat /proc/cmdline); do
  case "$a" in vgw.run=*) run=${a#vgw.run=} ;; vgw.out=*) out=${a#vgw.out=} ;; esac
done
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose hostroot /mnt; then
  echo "vm: cannot mount the host root over 9p" >&2
  poweroff -f
fi
mount -t proc proc /mnt/proc
mount -t sysfs sys /mnt/sys
mount -t devtmpfs dev /mnt/dev
mkdir -p /mnt/dev/pts && mount -t devpts devpts /mnt/dev/pts
# Unix sockets (tmux) do not work on 9p: a tmpfs for them.
mkdir -p /mnt/dev/shm && mount -t tmpfs shm /mnt/dev/shm
ip link set lo up
chroot /mnt /usr/sbin/ip link add dev vcan0 type vcan
chroot /mnt /usr/sbin/ip link set vcan0 mtu 16
chroot /mnt /usr/sbin/ip link set vcan0 up
chroot /mnt /usr/sbin/ip link add dev vcan1 type vcan
chroot /mnt /usr/sbin/ip link set vcan1 mtu 72
chroot /mnt /usr/sbin/ip link set vcan1 up
if [ -n "$run" ]; then
  chroot /mnt /bin/sh -c "cd / && HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh '$run' >'$out' 2>&1; echo \$? >'$out.rc'"
fi
sync
poweroff -f
