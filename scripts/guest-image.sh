#!/bin/bash
# Build (once, cached) the small guest that `"kind": "qemu"` VMs boot: Debian's kernel as an uncompressed
# vmlinux (PVH boot through qboot: seconds faster under TCG than the bzImage through SeaBIOS) and an
# initramfs of busybox-static, the virtio-net modules and an /init that configures eth0 from the kernel
# command line and runs the VM's script. Debian packages only: linux-image-*, busybox-static.
#
#   scripts/guest-image.sh [CACHE_DIR]      (default /var/cache/vrouter-emu/guest)
#
# Prints the directory holding vmlinux and initramfs.gz. Needs root for apt-get (qemu-system-x86,
# busybox-static, cpio, xz-utils are installed when missing).
set -euo pipefail

CACHE=${1:-/var/cache/vrouter-emu/guest}
if [ -s "$CACHE/vmlinux" ] && [ -s "$CACHE/initramfs.gz" ] && [ -s "$CACHE/VERSION" ]; then
  echo "$CACHE"
  exit 0
fi

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && /bin/busybox --list | grep -qx nc || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v xz >/dev/null || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
  echo "guest-image: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# linux-image-amd64 is a metapackage: the kernel is the package it depends on.
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'; }
pkg=$(kernel_pkg)
if [ -z "$pkg" ]; then
  apt-get update -q >&2 # a fresh machine may have no package lists yet
  pkg=$(kernel_pkg)
fi
[ -n "$pkg" ] || { echo "guest-image: cannot find the kernel package linux-image-amd64 depends on" >&2; exit 2; }
echo "guest-image: downloading $pkg" >&2
apt-get download "$pkg" >&2
dpkg -x ./"$pkg"_*.deb root
kver=$(ls root/lib/modules | head -1)
vmlinuz=root/boot/vmlinuz-$kver

# The bzImage's payload is XZ: the uncompressed ELF vmlinux starts at the XZ magic FD 37 7A 58 5A 00.
off=$(grep -abo $'\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1)
[ -n "$off" ] || { echo "guest-image: no XZ payload in $vmlinuz" >&2; exit 2; }
tail -c +$((off + 1)) "$vmlinuz" | xz -dc 2>/dev/null > vmlinux || true
[ -s vmlinux ] && head -c 4 vmlinux | grep -q ELF || { echo "guest-image: could not unpack vmlinux from $vmlinuz" >&2; exit 2; }

# initramfs: busybox with its applets, the virtio-net modules (loaded in dependency order), /init.
mkdir -p initrd/bin initrd/lib/modules initrd/proc initrd/sys initrd/dev initrd/tmp initrd/run
cp /bin/busybox initrd/bin/busybox
for a in $(initrd/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "initrd/bin/$a"; done
mods="kernel/drivers/virtio/virtio_ring kernel/drivers/virtio/virtio kernel/drivers/virtio/virtio_pci_modern_dev
kernel/drivers/virtio/virtio_pci_legacy_dev kernel/drivers/virtio/virtio_pci kernel/net/core/failover
kernel/drivers/net/net_failover kernel/drivers/net/virtio_net"
order=""
for m in $mods; do
  f=$(ls root/lib/modules/"$kver"/"$m".ko* 2>/dev/null | head -1)
  if [ -z "$f" ]; then continue; fi # built into this kernel
  b=$(basename "$m")
  case "$f" in
    *.xz) xz -dc "$f" > initrd/lib/modules/"$b".ko ;;
    *.zst) zstd -dc "$f" > initrd/lib/modules/"$b".ko ;;
    *) cp "$f" initrd/lib/modules/"$b".ko ;;
  esac
  order="$order $b"
done
echo "$order" > initrd/lib/modules/order

cat > initrd/init <<'EOF'
#!/bin/sh
# vrouter-emu guest: eth0 from the kernel command line (vmname= vmip=A/LEN gw= vrun=BASE64), then the
# VM's script; markers on the console start with "vrouter-emu-guest:".
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko 2>/dev/null; done
for kv in $(cat /proc/cmdline); do
  case "$kv" in
    vmname=*) vmname=${kv#vmname=} ;;
    vmip=*) vmip=${kv#vmip=} ;;
    gw=*) gw=${kv#gw=} ;;
    vmmtu=*) vmmtu=${kv#vmmtu=} ;;
    vrun=*) vrun=${kv#vrun=} ;;
  esac
done
hostname "${vmname:-guest}"
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -n "$vmmtu" ] && ip link set eth0 mtu "$vmmtu"
ip link set eth0 up
ip addr add "$vmip" dev eth0
ip route add default via "$gw"
echo "vrouter-emu-guest: $vmname up $vmip via $gw ($(uname -r))"
if [ -n "$vrun" ]; then
  echo "$vrun" | base64 -d > /tmp/run.sh
  sh /tmp/run.sh
  echo "vrouter-emu-guest: run exited $?"
fi
echo "vrouter-emu-guest: idle"
while :; do sleep 3600; done
EOF
chmod +x initrd/init
(cd initrd && find . | cpio -o -H newc --quiet | gzip -9) > initramfs.gz

mkdir -p "$CACHE"
cp vmlinux initramfs.gz "$CACHE"/
echo "$pkg $kver" > "$CACHE/VERSION"
echo "$CACHE"
