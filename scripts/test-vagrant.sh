#!/bin/bash
# `npm run test:vagrant` (CI, as root): the Vagrant matrix for real on the one box that runs anywhere.
#
#   1. Debian packages: vagrant, vagrant-libvirt, libvirt, qemu, debootstrap & co. (--no-install-recommends;
#      no service is started by the installation)
#   2. libvirt without systemd: virtlogd and libvirtd started by hand with pid files; /dev/kvm 0660 group
#      kvm (root-only /dev/kvm makes libvirt re-probe QEMU on every call; guests run on TCG regardless)
#   3. the debian12 box from Debian packages (vagrant/build-debian-box.sh, cached; rebuilt when that script
#      changed)
#   4. `vagrant validate --ignore-provider` on the whole Vagrantfile; `bash -n` and shellcheck on the
#      provisioning scripts (and this one, and the box builder); `node --check` on vagrant/matrix
#   5. `vagrant/matrix debian12`: a real `vagrant up` (TCG), provisioning, the project's selftest inside,
#      destroy — and its row in vagrant/matrix.json must be green
#   6. `vagrant/overlay`: the two-box overlay — debian12-a and debian12-b (the same box) up in parallel
#      on their private network vremu-overlay, one compute node per box, VM a pings VM b over MPLSoUDP,
#      the flows on both nodes, a capture on B's NIC (host side), the nodes stopped (the NIC gets its
#      address back), both boxes destroyed — every step must pass
#
# Whatever happens (trap), the host is left as it was: every machine Vagrant still knows destroyed (the
# overlay's two included), the libvirt domains, networks (vremu-ci, vremu-overlay, vremu-mgmt-isolated)
# and pools named vremu* removed (with their volumes), the daemons it started stopped by pid, the
# LIBVIRT_* iptables chains libvirt left behind (empty) removed, /dev/kvm's mode and group restored. The
# box and Vagrant's box store stay cached in /var/cache/vrouter-emu/vagrant. Takes ~10 minutes (most of it
# the guests under TCG; the first run also debootstraps the box, ~4 min).
#
# Env: VREMU_SELFTEST=standin runs the stand-in instead of the project's selftest (refused when CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

t_start=$(date +%s)
say() { echo "== test-vagrant [$(($(date +%s) - t_start)) s]: $*"; }
[ "$(id -u)" -eq 0 ] || { echo "test-vagrant: needs root (packages, libvirtd, /dev/kvm)" >&2; exit 2; }

export VREMU_SELFTEST=${VREMU_SELFTEST:-real}
if [ "$VREMU_SELFTEST" != real ] && [ "${CI:-}" = true ]; then
  echo "test-vagrant: VREMU_SELFTEST=$VREMU_SELFTEST is for trying the machinery; CI runs the real selftest" >&2
  exit 2
fi
export VREMU_BOX_DIR=${VREMU_BOX_DIR:-/var/cache/vrouter-emu/vagrant}
export VAGRANT_HOME=${VAGRANT_HOME:-$VREMU_BOX_DIR/vagrant.d}
export VREMU_LIBVIRT_POOL=vremu
export VAGRANT_CHECKPOINT_DISABLE=1
export LIBVIRT_DEFAULT_URI=qemu:///system
STATE=/run/vrouter-emu/test-vagrant
mkdir -p "$STATE"

# ---------------------------------------------------------------- cleanup (always)
started_virtlogd=0
started_libvirtd=0
made_policy_rc=0
kvm_saved=""
chains_before=""

iptables_chains() { # lines "BINARY TABLE CHAIN" for the LIBVIRT_* chains that exist now
  local ipt t
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for t in filter nat mangle; do
      "$ipt" -w -t "$t" -S 2>/dev/null | awk -v i="$ipt" -v t="$t" '$1 == "-N" && $2 ~ /^LIBVIRT_/ { print i, t, $2 }'
    done
  done
}

stop_pid() { # NAME PIDFILE: stop a daemon this script started, by its pid file
  local pid
  [ -s "$2" ] || return 0
  pid=$(cat "$2")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { echo "test-vagrant: stopped $1 (pid $pid)"; return 0; }
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
  echo "test-vagrant: killed $1 (pid $pid)"
}

cleanup() {
  local rc=$? v
  set +e
  trap - EXIT INT TERM
  say "cleaning up"
  if [ -S /run/libvirt/libvirt-sock ]; then
    # Machines the matrix could not destroy (interrupted run): Vagrant's state first, then libvirt's.
    if [ -d vagrant/.vagrant/machines ]; then
      for v in vagrant/.vagrant/machines/*/libvirt/id; do
        [ -e "$v" ] || continue
        v=${v#vagrant/.vagrant/machines/}
        VAGRANT_CWD=vagrant timeout 300 vagrant destroy -f "${v%%/*}" >/dev/null 2>&1
      done
    fi
    for v in $(virsh list --all --name 2>/dev/null | grep '^vremu-'); do
      virsh destroy "$v" >/dev/null 2>&1
      virsh undefine --remove-all-storage "$v" >/dev/null 2>&1 && echo "test-vagrant: removed domain $v"
    done
    for v in $(virsh net-list --all --name 2>/dev/null | grep '^vremu'); do
      virsh net-destroy "$v" >/dev/null 2>&1
      virsh net-undefine "$v" >/dev/null 2>&1 && echo "test-vagrant: removed network $v"
    done
    for v in $(virsh pool-list --all --name 2>/dev/null | grep '^vremu'); do
      virsh pool-start "$v" >/dev/null 2>&1
      virsh -q vol-list "$v" 2>/dev/null | awk '{ print $1 }' | while read -r vol; do
        [ -n "$vol" ] && virsh vol-delete --pool "$v" "$vol" >/dev/null 2>&1
      done
      virsh pool-destroy "$v" >/dev/null 2>&1
      virsh pool-delete "$v" >/dev/null 2>&1
      virsh pool-undefine "$v" >/dev/null 2>&1 && echo "test-vagrant: removed storage pool $v"
    done
  fi
  [ "$started_libvirtd" = 1 ] && stop_pid libvirtd "$STATE/libvirtd.pid"
  [ "$started_virtlogd" = 1 ] && stop_pid virtlogd "$STATE/virtlogd.pid"
  # dnsmasq of a vremu network that outlived libvirtd
  for v in /run/libvirt/network/vremu*.pid; do
    [ -s "$v" ] && kill "$(cat "$v")" 2>/dev/null && echo "test-vagrant: stopped dnsmasq of $(basename "$v" .pid)"
    rm -f "$v"
  done
  # LIBVIRT_* chains that were not there before: drop the jumps to them and them, when empty.
  iptables_chains | while read -r ipt t chain; do
    grep -qx "$ipt $t $chain" <<< "$chains_before" && continue
    if [ "$("$ipt" -w -t "$t" -S "$chain" | grep -vc '^-N ')" -ne 0 ]; then
      echo "test-vagrant: $ipt -t $t $chain is not empty; left alone" >&2
      continue
    fi
    "$ipt" -w -t "$t" -S | awk -v c="$chain" '$1 == "-A" && $0 ~ (" -j " c "( |$)")' | while read -r rule; do
      read -ra words <<< "${rule/#-A/-D}"
      "$ipt" -w -t "$t" "${words[@]}"
    done
    "$ipt" -w -t "$t" -F "$chain" && "$ipt" -w -t "$t" -X "$chain" && echo "test-vagrant: removed $ipt -t $t $chain"
  done
  if [ -n "$kvm_saved" ]; then
    read -r mode group <<< "$kvm_saved"
    chgrp "$group" /dev/kvm && chmod "$mode" /dev/kvm && echo "test-vagrant: /dev/kvm back to $mode $group"
  fi
  [ "$made_policy_rc" = 1 ] && rm -f /usr/sbin/policy-rc.d
  rmdir "$STATE" 2>/dev/null
  say "done (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- 1. packages
PKGS=(vagrant vagrant-libvirt libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
  qemu-utils debootstrap dnsmasq-base iptables rsync extlinux syslinux-common fdisk e2fsprogs ruby shellcheck)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  # No daemon may start from a maintainer script: this host has no systemd, and we start them by pid file.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    made_policy_rc=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [ "$made_policy_rc" = 1 ]; then rm -f /usr/sbin/policy-rc.d; made_policy_rc=0; fi
fi
vagrant --version
chains_before=$(iptables_chains)

# ---------------------------------------------------------------- 2. libvirt, /dev/kvm
# Before libvirtd starts: with a root-only /dev/kvm it re-probes QEMU on every call.
if [ -e /dev/kvm ]; then
  kvm_saved=$(stat -c '%a %G' /dev/kvm)
  getent group kvm >/dev/null && chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi
if virsh -c qemu:///system version >/dev/null 2>&1; then
  say "libvirtd already running (not ours: left running)"
else
  say "starting virtlogd and libvirtd (pid files in $STATE)"
  if [ ! -S /run/libvirt/virtlogd-sock ]; then
    virtlogd -d -p "$STATE/virtlogd.pid"
    started_virtlogd=1
  fi
  libvirtd -d -p "$STATE/libvirtd.pid"
  started_libvirtd=1
  for _ in $(seq 1 150); do
    virsh -c qemu:///system version >/dev/null 2>&1 && break
    sleep 0.2
  done
  virsh -c qemu:///system version >/dev/null || { echo "test-vagrant: libvirtd does not answer" >&2; exit 1; }
fi

passed=0
failed=0
result() { # NAME RC
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); say "PASS $1"; else failed=$((failed + 1)); say "FAIL $1 (exit $2)"; fi
}

# ---------------------------------------------------------------- 3. the box
say "debian12 box (vagrant/build-debian-box.sh, cached in $VREMU_BOX_DIR)"
rc=0
bash vagrant/build-debian-box.sh > /dev/null || rc=$?
result "build-debian-box" "$rc"

# ---------------------------------------------------------------- 4. static checks
rc=0
(cd vagrant && vagrant validate --ignore-provider) || rc=$?
result "vagrant validate --ignore-provider" "$rc"

scripts=(vagrant/provision/*.sh vagrant/build-debian-box.sh vagrant/overlay scripts/test-vagrant.sh)
rc=0
for s in "${scripts[@]}"; do bash -n "$s" || rc=1; done
node --check vagrant/matrix || rc=1
result "bash -n (${#scripts[@]} scripts), node --check vagrant/matrix" "$rc"

rc=0
shellcheck -x -P SCRIPTDIR "${scripts[@]}" || rc=$?
result "shellcheck $(shellcheck --version | awk '/^version:/ { print $2 }')" "$rc"

# ---------------------------------------------------------------- 5. the matrix, for real
say "vagrant/matrix debian12 (selftest: $VREMU_SELFTEST)"
rc=0
node vagrant/matrix debian12 || rc=$?
# shellcheck disable=SC2016 # JavaScript, not shell
row=$(node -e '
  const m = require(process.argv[1]);
  const r = m.rows.find((x) => x.machine === "debian12");
  if (!r) { console.log("no debian12 row"); process.exit(1); }
  console.log(`debian12: ${r.status}, ${r.summary}`);
  process.exit(r.green && m.selftest === process.argv[2] ? 0 : 1);
' "$ROOT/vagrant/matrix.json" "$VREMU_SELFTEST") || rc=1
echo "$row"
result "vagrant/matrix debian12 row green" "$rc"

# ---------------------------------------------------------------- 6. the two-box overlay, for real
say "vagrant/overlay (two boxes, one compute node each, MPLSoUDP)"
rc=0
bash vagrant/overlay || rc=$?
result "vagrant/overlay: two boxes, VM a pings VM b over MPLSoUDP" "$rc"

say "$passed passed, $failed failed"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
