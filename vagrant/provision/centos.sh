#!/bin/bash
# Provisioning of the CentOS machines (centos65, centos71, rhel7 — the CentOS 7.1 stand-in), run as root:
#
#   centos.sh system MACHINE KERNEL NODE_VERSION KERNEL_RELEASE [NODE_URL]
#       yum from vault.centos.org (mirrorlist.centos.org is gone) for the box's own release — no update
#       to a later minor —, the release-note kernel from the vault tree of KERNEL_RELEASE made grubby's
#       default (Vagrant reboots after this step), the build tools, Node NODE_VERSION
#   centos.sh build MACHINE ...
#       the project in /vagrant: runtime dependencies, netlink's binding and the C addon for this glibc
#
# CentOS 6's stock iproute has no `ip netns` (RDO shipped iproute-2.6.32-130.el6ost.netns.2 for that);
# set VREMU_EL6_IPROUTE_RPM to that package's URL to install it. Without it provision:ip-netns fails and
# so does the selftest, which is what that platform gives without RDO.
set -euo pipefail
phase=${1:?phase}
machine=${2:?machine}
kernel=${3:-}
node_version=${4:-}
kernel_release=${5:-}
node_url=${6:-https://nodejs.org/dist}
# shellcheck source=lib.sh
. /vagrant/vagrant/provision/lib.sh

# The box's own release: "CentOS release 6.7 (Final)", "CentOS Linux release 7.1.1503 (Core)".
release=$(sed -E 's/.*release ([0-9.]+).*/\1/' /etc/centos-release)
major=${release%%.*}
VAULT=${VREMU_CENTOS_VAULT:-http://vault.centos.org}
YUM=(yum -y -q --disablerepo='*' --enablerepo='vremu-*')

vault_repos() {
  cat > /etc/yum.repos.d/vremu-vault.repo <<EOF
# vrouter-emu: CentOS $release from the vault (the mirror network dropped it)
[vremu-os]
name=CentOS $release os (vault)
baseurl=$VAULT/$release/os/\$basearch/
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-$major
[vremu-updates]
name=CentOS $release updates (vault)
baseurl=$VAULT/$release/updates/\$basearch/
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-$major
EOF
  if "${YUM[@]}" makecache > /var/log/vremu-yum.log 2>&1; then
    status yum 1 "CentOS $release from $VAULT"
  else
    status yum 0 "yum makecache against $VAULT/$release fails: $(grep -m1 -iE 'error|fail' /var/log/vremu-yum.log)"
  fi
}

pin_kernel() {
  if [ -z "$kernel" ]; then
    status kernel 1 "no kernel to pin; running $(uname -r)"
    return 0
  fi
  local img=/boot/vmlinuz-$kernel.x86_64
  if [ "$(uname -r)" = "$kernel.x86_64" ]; then
    status kernel 1 "running $kernel"
    return 0
  fi
  if ! rpm -q "kernel-$kernel" >/dev/null 2>&1; then
    # An older kernel next to the box's: rpm -i (install-only package), not an upgrade.
    local url=$VAULT/$kernel_release/os/x86_64/Packages/kernel-$kernel.x86_64.rpm
    if ! rpm -ivh --oldpackage "$url" > /var/log/vremu-kernel.log 2>&1; then
      status kernel 0 "kernel-$kernel from $url failed: $(grep -m1 -iE 'error|fail|needed' /var/log/vremu-kernel.log); keeping $(uname -r)"
      return 0
    fi
  fi
  if [ -e "$img" ] && grubby --set-default="$img" > /dev/null 2>&1; then
    status kernel 1 "kernel-$kernel installed and grubby's default; active after the reboot"
  else
    status kernel 0 "kernel-$kernel installed but grubby cannot make $img the default; keeping $(uname -r)"
  fi
}

case "$phase" in
  system)
    vault_repos
    "${YUM[@]}" install ca-certificates curl tar gzip gcc gcc-c++ make python iproute iputils rsync \
      > /var/log/vremu-yum-install.log 2>&1 || warn "some base packages failed to install (see /var/log/vremu-yum-install.log)"
    if [ -n "${VREMU_EL6_IPROUTE_RPM:-}" ] && [ "$major" = 6 ]; then
      rpm -Uvh --oldpackage "$VREMU_EL6_IPROUTE_RPM" > /var/log/vremu-iproute.log 2>&1 ||
        warn "iproute with netns from $VREMU_EL6_IPROUTE_RPM failed"
    fi
    pin_kernel
    install_node "$node_version" "$node_url"
    ;;
  build)
    status running-kernel "$([ -z "$kernel" ] || [ "$(uname -r)" = "$kernel.x86_64" ] && echo 1 || echo 0)" \
      "running $(uname -r) on CentOS $release${kernel:+ (release notes: $kernel)}"
    check_tools
    build_online
    ;;
  *) die "unknown phase $phase (system|build)" ;;
esac
