#!/usr/bin/env bash
# Builds what the SocketCAN tests boot under QEMU: Debian's stock kernel (it has CAN, CAN_RAW and VCAN as modules) and a
# busybox initramfs that loads them, mounts the host root over 9p and runs one command in it (see init.sh).
# Everything is cached under .vm/ (gitignored); running it again does nothing while the cache matches the module list.
# Needs: apt-get (to download the kernel package, no install), dpkg-deb, busybox-static, cpio (all in scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
VM=.vm
# Modules the VM loads, in a workable order (the package has no modules.dep; init.sh retries what fails).
# can-isotp and can-j1939 are the kernel's own ISO 15765-2 and J1939 stacks: the reference the diagnostics tests compare with.
MODULES="drivers/virtio/virtio drivers/virtio/virtio_ring drivers/virtio/virtio_pci_legacy_dev
  drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci fs/netfs/netfs fs/fscache/fscache
  net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p net/can/can net/can/can-raw drivers/net/can/dev/can-dev
  drivers/net/can/vcan net/can/can-isotp net/can/j1939/can-j1939"
# The cache is current when it was built from this module list and this init.sh.
current() {
  [ -s "$VM/vmlinuz" ] && [ -s "$VM/initramfs.cpio.gz" ] && [ "$VM/initramfs.cpio.gz" -nt scripts/vm/init.sh ] &&
    [ "$(cat "$VM/modules/list" 2>/dev/null)" = "$(echo $MODULES)" ]
}
if current; then exit 0; fi
mkdir -p "$VM"
exec 9>"$VM/.build.lock"
flock -w 600 9
if current; then exit 0; fi

# The kernel: whatever linux-image-amd64 currently points at, unpacked (not installed).
if [ ! -s "$VM/vmlinuz" ] || [ ! -s "$VM/modules/version" ] || [ "$(cat "$VM/modules/list" 2>/dev/null)" != "$(echo $MODULES)" ]; then
  resolve() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1; }
  pkg=$(resolve)
  # A fresh CI machine may have no package lists yet.
  if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then apt-get update -qq >&2 && pkg=$(resolve); fi
  [ -n "$pkg" ] || { echo "vm: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
  rm -rf "$VM/kernel" "$VM"/*.deb
  (cd "$VM" && apt-get download "$pkg" >&2)
  dpkg-deb -x "$VM"/"$pkg"_*.deb "$VM/kernel"
  rm -f "$VM"/*.deb
  # Keep only what the VM needs (the package unpacks to 400 MB): the kernel image and the modules listed below.
  kver=$(ls "$VM/kernel/lib/modules" | head -1)
  rm -rf "$VM/modules" && mkdir -p "$VM/modules"
  for m in $MODULES; do
    f=$(ls "$VM/kernel/lib/modules/$kver/kernel/$m".ko* 2>/dev/null | head -1) || true
    [ -n "$f" ] || { echo "vm: module $m missing from $kver" >&2; exit 1; }
    case "$f" in *.xz) xz -dc "$f" >"$VM/modules/$(basename "$m").ko" ;; *) cp "$f" "$VM/modules/$(basename "$m").ko" ;; esac
  done
  echo "$kver" >"$VM/modules/version"
  echo $MODULES >"$VM/modules/list"
  cp "$VM"/kernel/boot/vmlinuz-* "$VM/vmlinuz.tmp"
  rm -rf "$VM/kernel"
  mv "$VM/vmlinuz.tmp" "$VM/vmlinuz"
fi
kver=$(cat "$VM/modules/version")

# The initramfs: busybox, the modules in dependency order (the package has no modules.dep), and init.sh as /init.
root="$VM/initramfs"
rm -rf "$root" && mkdir -p "$root"/{bin,dev,proc,sys,mnt,modules}
cp /bin/busybox "$root/bin/busybox"
for m in $MODULES; do
  cp "$VM/modules/$(basename "$m").ko" "$root/modules/"
  echo "$(basename "$m").ko" >>"$root/modules/order"
done
cp scripts/vm/init.sh "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$VM/initramfs.cpio.gz.tmp"
mv "$VM/initramfs.cpio.gz.tmp" "$VM/initramfs.cpio.gz"
rm -rf "$root"
echo "vm: kernel $kver and initramfs ready in $VM/" >&2
