#!/bin/bash
# Shared by the per-family provisioners (ubuntu.sh, centos.sh, debian.sh) and selftest.sh; sourced from
# the synced project (/vagrant/vagrant/provision/lib.sh), never run on its own.
#
# Provisioning steps record their outcome in $VREMU_STATUS (name, 1|0, detail; tab separated); selftest.sh
# adds them to the box's report as "provision:NAME" checks, so a kernel that could not be pinned or an
# addon that did not build shows in the matrix next to the selftest's own checks.

VREMU_STATUS=/var/lib/vremu/provision.tsv
VREMU_PROJECT=/vagrant
export PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin

log() { echo "vremu-provision[${machine:-?}]: $*"; }
warn() { echo "vremu-provision[${machine:-?}]: WARNING: $*" >&2; }
die() {
  echo "vremu-provision[${machine:-?}]: $*" >&2
  exit 1
}

# status NAME OK(1|0) DETAIL: record (or replace) one provisioning outcome.
status() {
  mkdir -p "$(dirname "$VREMU_STATUS")"
  touch "$VREMU_STATUS"
  local detail=${3//$'\t'/ }
  detail=${detail//$'\n'/ }
  grep -v "^$1"$'\t' "$VREMU_STATUS" > "$VREMU_STATUS.new" || true
  printf '%s\t%s\t%s\n' "$1" "$2" "$detail" >> "$VREMU_STATUS.new"
  mv "$VREMU_STATUS.new" "$VREMU_STATUS"
  if [ "$2" = 1 ]; then log "$1: $detail"; else warn "$1: $detail"; fi
}

# node_major: the major version of the node on PATH (0 when there is none).
node_major() {
  local v
  v=$(node --version 2>/dev/null) || { echo 0; return; }
  v=${v#v}
  echo "${v%%.*}"
}

# fetch URL FILE: curl, else wget (old boxes have one or the other).
fetch() {
  if command -v curl >/dev/null; then
    curl -fsSL --retry 3 -o "$2" "$1"
  else
    wget -q -O "$2" "$1"
  fi
}

# install_node VERSION BASE_URL: the official linux-x64 tarball into /usr/local (it carries the headers,
# include/node, that the C addon is compiled against).
install_node() {
  local v=$1 base=$2 tgz
  if [ "$(node --version 2>/dev/null)" = "v$v" ]; then
    status node 1 "node v$v (already installed)"
    return 0
  fi
  tgz=$(mktemp)
  if fetch "$base/v$v/node-v$v-linux-x64.tar.gz" "$tgz" &&
    tar -xzf "$tgz" -C /usr/local --strip-components=1 --no-same-owner; then
    rm -f "$tgz"
    if node --version >/dev/null 2>&1; then
      status node 1 "node $(node --version) from $base"
    else
      status node 0 "node v$v does not run here: $(node --version 2>&1 | head -n 1)"
    fi
  else
    rm -f "$tgz"
    status node 0 "could not download node v$v from $base"
  fi
}

# check_tools: what the emulator uses from the system (ip netns, veth, tun, ping).
check_tools() {
  local missing=() t
  for t in ip ping modprobe; do command -v "$t" >/dev/null || missing+=("$t"); done
  if [ ${#missing[@]} -gt 0 ]; then
    status tools 0 "missing: ${missing[*]}"
  else
    status tools 1 "ip, ping, modprobe present"
  fi
  if ip netns list >/dev/null 2>&1; then
    status ip-netns 1 "ip netns works ($(ip -V 2>&1 | head -n 1))"
  else
    status ip-netns 0 "ip netns unavailable: $(ip netns list 2>&1 | head -n 1)"
  fi
  modprobe tun >/dev/null 2>&1 || true
  if [ -c /dev/net/tun ]; then
    status tun 1 "/dev/net/tun present"
  else
    status tun 0 "/dev/net/tun missing"
  fi
}

# build_addon: compile the project's C addon (binding.gyp's sources) against the installed node's
# headers, with the flags node-gyp uses, without node-gyp (whose Python needs differ per release).
build_addon() {
  local inc srcs cc
  inc=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node
  cc=$(command -v cc || command -v gcc || true)
  if [ -z "$cc" ]; then
    status addon 0 "no C compiler"
    return 0
  fi
  if [ ! -e "$inc/node_api.h" ]; then
    status addon 0 "no Node-API headers in $inc"
    return 0
  fi
  srcs=$(node -e 'var g=JSON.parse(require("fs").readFileSync("binding.gyp","utf8"));console.log(g.targets[0].sources.join(" "))' 2>/dev/null ||
    echo src/native/*.c)
  mkdir -p build/Release
  # shellcheck disable=SC2086 # $srcs is a list of paths without spaces
  if "$cc" -std=c99 -Wall -Wextra -Wno-unused-parameter -O2 -fPIC -pthread -shared \
    -D_FILE_OFFSET_BITS=64 -D_LARGEFILE_SOURCE -DBUILDING_NODE_EXTENSION -DNODE_GYP_MODULE_NAME=vrouter_native \
    -I"$inc" $srcs -o build/Release/vrouter_native.node > /var/log/vremu-addon-build.log 2>&1; then
    status addon 1 "built with $("$cc" --version | head -n 1) ($(grep -c 'warning:' /var/log/vremu-addon-build.log) warnings)"
  else
    status addon 0 "compile failed: $(grep -m1 'error' /var/log/vremu-addon-build.log)"
  fi
}

# check_loads NAME MODULE: does `require(MODULE)` work in the project with this node?
check_loads() {
  local out
  if out=$(cd "$VREMU_PROJECT" && node -e "require('$2')" 2>&1); then
    status "$1" 1 "require('$2') loads"
  else
    status "$1" 0 "require('$2') fails: $(echo "$out" | grep -m1 -E 'Error|error' || echo "$out" | head -n 1)"
  fi
}

# build_online: runtime dependencies from the lockfile (dev tools need a newer Node than the old boxes
# run), netlink's native binding for this glibc, the C addon. dist/ (the bundle) came from the host.
build_online() {
  cd "$VREMU_PROJECT" || die "no $VREMU_PROJECT"
  if [ "$(node_major)" -eq 0 ]; then
    status deps 0 "no node: nothing built"
    return 0
  fi
  local npm_major ok=0
  npm_major=$(npm --version 2>/dev/null | cut -d. -f1)
  if [ "${npm_major:-0}" -ge 7 ]; then
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund > /var/log/vremu-npm.log 2>&1 && ok=1
  else # npm 6 (Node 10) does not read lockfile v3
    npm install --only=production --no-package-lock --ignore-scripts --no-audit > /var/log/vremu-npm.log 2>&1 && ok=1
  fi
  if [ "$ok" = 1 ]; then
    status deps 1 "npm $(npm --version) installed the runtime dependencies"
  else
    status deps 0 "npm failed: $(grep -m1 -i 'err' /var/log/vremu-npm.log)"
  fi
  # netlink's prebuild needs GLIBCXX_3.4.21: node-gyp-build tests it and compiles when it does not load.
  (npm rebuild netlink > /var/log/vremu-netlink.log 2>&1) || true
  check_loads netlink netlink
  build_addon
  check_loads addon-loads ./build/Release/vrouter_native.node
  if [ -s dist/vrouter-emu.cjs ]; then
    status bundle 1 "dist/vrouter-emu.cjs from the host (esbuild needs Node >= 18)"
  else
    status bundle 0 "dist/vrouter-emu.cjs missing: run npm run build on the host before vagrant up"
  fi
}
