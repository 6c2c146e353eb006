#!/bin/bash
# Provisioning of the Debian 12 machine (debian12, box built by vagrant/build-debian-box.sh), run as root.
# The box has no network (isolated libvirt networks) and no apt at provisioning time: everything comes from
# the box image (Node in /usr/local/bin, iproute2, ping, kmod) or the synced project (node_modules/, dist/
# and build/ from the host, which is Debian 12 as well).
#
#   debian.sh system MACHINE [KERNEL] ...   Node and the tools the emulator uses; no kernel pin: the
#                                           `development` profile runs Debian's own kernel
#   debian.sh build MACHINE ...             the bundle rebuilt inside the box (esbuild from node_modules,
#                                           offline); the C addon and netlink's binding from the host
#                                           must load here (rebuilt when the box has a compiler)
set -euo pipefail
phase=${1:?phase}
machine=${2:?machine}
# shellcheck source=lib.sh
. /vagrant/vagrant/provision/lib.sh

case "$phase" in
  system)
    if [ "$(node_major)" -ge 16 ]; then
      status node 1 "node $(node --version) (in the box image)"
    else
      status node 0 "no Node >= 16 in the box (found: $(node --version 2>&1 | head -n 1)); rebuild the box"
    fi
    status kernel 1 "Debian's kernel $(uname -r) (development profile: nothing to pin)"
    [ -r /etc/vremu-box ] && log "box: $(tr '\n' ' ' < /etc/vremu-box)"
    check_tools
    ;;
  build)
    cd "$VREMU_PROJECT" || die "no $VREMU_PROJECT"
    if [ ! -d node_modules/esbuild ]; then
      status bundle 0 "node_modules/ is not in the synced folder: run npm ci on the host first"
    elif node scripts/build.cjs > /var/log/vremu-bundle.log 2>&1; then
      status bundle 1 "dist/ rebuilt in the box (esbuild, offline)"
    else
      status bundle 0 "node scripts/build.cjs failed: $(head -n 1 /var/log/vremu-bundle.log)"
    fi
    if command -v cc >/dev/null; then
      build_addon
    elif [ -s build/Release/vrouter_native.node ]; then
      status addon 1 "the host's build/Release/vrouter_native.node (Debian 12 too; no compiler in the box)"
    else
      status addon 0 "build/Release/vrouter_native.node missing and no compiler in the box: npm ci on the host first"
    fi
    check_loads addon-loads ./build/Release/vrouter_native.node
    check_loads netlink netlink
    ;;
  *) die "unknown phase $phase (system|build)" ;;
esac
