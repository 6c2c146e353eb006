#!/bin/bash
# Provisioning of the Ubuntu machines (ubuntu1404: trusty, ubuntu1204: precise), run as root by Vagrant:
#
#   ubuntu.sh system MACHINE KERNEL NODE_VERSION [RELEASE] [NODE_URL]
#       package sources (precise — and trusty, once it goes — live on old-releases.ubuntu.com), the
#       release-note kernel as Contrail's puppet installed it (linux-image + -extra + headers) and made
#       GRUB's default (Vagrant reboots after this step), the build tools, Node NODE_VERSION
#   ubuntu.sh build MACHINE ...
#       the project in /vagrant: runtime dependencies, netlink's binding and the C addon for this glibc
#
# A kernel the archive no longer carries is not fatal: the box keeps its own kernel, the step is recorded
# as failed (provision:kernel) and the selftest reports the kernel it finds.
set -euo pipefail
phase=${1:?phase}
machine=${2:?machine}
kernel=${3:-}
node_version=${4:-}
node_url=${6:-https://nodejs.org/dist}
export DEBIAN_FRONTEND=noninteractive
# shellcheck source=lib.sh
. /vagrant/vagrant/provision/lib.sh

# shellcheck disable=SC1091 # the box's file
codename=$(. /etc/lsb-release && echo "$DISTRIB_CODENAME")

apt_update_ok() {
  apt-get update -q > /var/log/vremu-apt-update.log 2>&1 &&
    ! grep -qE '^(W|E): (Failed to fetch|The repository)' /var/log/vremu-apt-update.log
}

fix_sources() {
  if apt_update_ok; then
    status apt 1 "$codename archive reachable"
    return 0
  fi
  log "the Ubuntu archive does not serve $codename any more: switching to old-releases.ubuntu.com"
  sed -i -E 's#https?://([a-z0-9.-]+\.)?(archive|security)\.ubuntu\.com/ubuntu/?#http://old-releases.ubuntu.com/ubuntu/#g' \
    /etc/apt/sources.list
  if apt_update_ok; then
    status apt 1 "$codename from old-releases.ubuntu.com"
  else
    status apt 0 "apt-get update fails: $(grep -m1 -E '^(W|E):' /var/log/vremu-apt-update.log)"
  fi
}

# The GRUB menu title of KERNEL ("Submenu>Entry" when it sits in a submenu), from grub.cfg.
grub_entry() {
  awk -v k="Linux $1" -v q="'" '
    function title(s,  a) { a = index(s, q); if (!a) return ""; s = substr(s, a + 1); return substr(s, 1, index(s, q) - 1) }
    /^submenu / { sub_t = title($0); next }
    /^}/ { sub_t = "" }
    /^[ \t]*menuentry / {
      t = title($0)
      if (index(t, k) && t !~ /recovery/) { print ((sub_t != "" && $0 ~ /^[ \t]/) ? sub_t ">" t : t); exit }
    }' /boot/grub/grub.cfg
}

pin_kernel() {
  if [ -z "$kernel" ]; then
    status kernel 1 "no kernel to pin; running $(uname -r)"
    return 0
  fi
  if [ "$(uname -r)" = "$kernel" ]; then
    status kernel 1 "running $kernel"
    return 0
  fi
  local abi=${kernel%-generic} entry
  if ! apt-get install -y -q "linux-image-$kernel" > /var/log/vremu-kernel.log 2>&1; then
    status kernel 0 "linux-image-$kernel is not installable from the $codename archive; keeping $(uname -r)"
    return 0
  fi
  apt-get install -y -q "linux-image-extra-$kernel" "linux-headers-$abi" "linux-headers-$kernel" \
    >> /var/log/vremu-kernel.log 2>&1 || warn "linux-image-extra/headers for $kernel not installable"
  entry=$(grub_entry "$kernel")
  if [ -z "$entry" ]; then
    status kernel 0 "linux-image-$kernel installed but not in /boot/grub/grub.cfg; keeping $(uname -r)"
    return 0
  fi
  sed -i -E "s|^GRUB_DEFAULT=.*|GRUB_DEFAULT=\"$entry\"|" /etc/default/grub
  update-grub > /dev/null 2>&1
  status kernel 1 "$kernel installed and GRUB's default (\"$entry\"); active after the reboot"
}

case "$phase" in
  system)
    fix_sources
    apt-get install -y -q ca-certificates curl build-essential iputils-ping rsync \
      > /var/log/vremu-apt.log 2>&1 || warn "some base packages failed to install (see /var/log/vremu-apt.log)"
    # `ip netns`: iproute2 on trusty, still called iproute on precise.
    apt-get install -y -q iproute2 >> /var/log/vremu-apt.log 2>&1 ||
      apt-get install -y -q iproute >> /var/log/vremu-apt.log 2>&1 || warn "neither iproute2 nor iproute installs"
    pin_kernel
    install_node "$node_version" "$node_url"
    ;;
  build)
    status running-kernel "$([ -z "$kernel" ] || [ "$(uname -r)" = "$kernel" ] && echo 1 || echo 0)" \
      "running $(uname -r)${kernel:+ (release notes: $kernel)}"
    check_tools
    build_online
    ;;
  *) die "unknown phase $phase (system|build)" ;;
esac
