#!/bin/bash
# One compute node of the two-box overlay (vagrant/overlay) in this box, as root. The last provisioner of
# the overlay machines (debian12-a, debian12-b), and what vagrant/overlay calls to stop the node.
#
#   overlay.sh start NODE NODE,FABRIC_IP,VM,VM_IP...
#       writes the cluster's topology (/var/lib/vremu/overlay/topology.json: the nodes — fabric_ip the
#       box's private address with its prefix, fabric_interface the NIC that carries it — one network
#       `demo` 10.1.1.0/24, one VM per node, MPLSoUDP) — the same bytes on every box, as each node derives
#       its routes from the whole file — and starts `vrouter-emu start --topology … --node NODE
#       --socket /run/vrouter-emu/vrouter.sock --no-demo-traffic` in the background (setsid, no systemd),
#       its pid in /run/vremu-overlay.pid, its output in /var/log/vremu-overlay.log; returns once the node
#       says it is ready ("Stop with Ctrl-C"), 1 when it exits or is not ready in time.
#   overlay.sh stop
#       (the node start started: its name is in /var/lib/vremu/overlay/node)
#       SIGTERM to the node, waits for it; then checks it left the box as it found it: the fabric NIC has
#       its address back, vhost0 and the VM's namespace are gone. 1 when something is not.
#
# The boxes are the same box with the same network settings, so the private NIC's name found here is the
# peer's too (the topology names both; a node only uses its own).
set -uo pipefail
cmd=${1:?usage: overlay.sh start NODE NODE,FABRIC_IP,VM,VM_IP... | overlay.sh stop}
machine=${2:-$(hostname)}
# shellcheck source=lib.sh
. /vagrant/vagrant/provision/lib.sh

DIR=/var/lib/vremu/overlay
TOPO=$DIR/topology.json
PIDFILE=/run/vremu-overlay.pid
NODEFILE=$DIR/node # the node this box runs (stop checks what it gave back)
LOG=/var/log/vremu-overlay.log
SOCKET=/run/vrouter-emu/vrouter.sock
READY_TIMEOUT=${VREMU_OVERLAY_READY_TIMEOUT:-180} # seconds; the node's start under TCG takes a few

running() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {
  local node=$1 self_ip="" nic prefix entry
  shift
  [ $# -ge 2 ] || die "start: expected NODE and at least two NODE,FABRIC_IP,VM,VM_IP"
  for entry in "$@"; do
    IFS=, read -r n ip _ _ <<< "$entry"
    [ "$n" = "$node" ] && self_ip=$ip
  done
  [ -n "$self_ip" ] || die "node $node is not in the cluster ($*)"
  running && die "a node runs already (pid $(cat "$PIDFILE")); overlay.sh stop first"

  # The private NIC: the one with this box's fabric address (Vagrant configured it); its prefix.
  read -r nic prefix < <(ip -o -4 addr show | awk -v ip="$self_ip" '{ split($4, a, "/"); if (a[1] == ip) { print $2, a[2]; exit } }')
  [ -n "${nic:-}" ] || die "no interface has $self_ip: $(ip -o -4 addr show | awk '{ print $2, $4 }' | tr '\n' ' ')"
  log "fabric NIC $nic ($self_ip/$prefix)"

  mkdir -p "$DIR"
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const [nic, prefix, ...cluster] = process.argv.slice(1);
    const rows = cluster.map((c) => c.split(","));
    const topo = {
      nodes: rows.map(([name, ip]) => ({ name, fabric_ip: `${ip}/${prefix}`, fabric_interface: nic })),
      networks: [{ name: "demo", subnet: "10.1.1.0/24", gateway: "10.1.1.1" }],
      vms: rows.map(([node, , vm, vmIp]) => ({ name: vm, ip: vmIp, network: "demo", node })),
      global_vrouter_config: { encapsulation_priorities: { encapsulation: ["MPLSoUDP"] } },
    };
    process.stdout.write(JSON.stringify(topo, null, 2) + "\n");
  ' "$nic" "$prefix" "$@" > "$TOPO.new" || die "cannot write the topology"
  mv "$TOPO.new" "$TOPO"
  echo "$node" > "$NODEFILE"
  log "topology $TOPO (sha256 $(sha256sum "$TOPO" | cut -c1-16)…)"

  # `vrouter-emu` on PATH, as on a host where the project is installed.
  ln -sf "$VREMU_PROJECT/bin/vrouter-emu.cjs" /usr/local/bin/vrouter-emu

  cd "$VREMU_PROJECT" || die "no $VREMU_PROJECT"
  : > "$LOG"
  # Its own session, no terminal, every descriptor off the provisioner's ssh channel (or Vagrant waits).
  setsid nohup node bin/vrouter-emu.cjs start --topology "$TOPO" --node "$node" --socket "$SOCKET" \
    --no-demo-traffic < /dev/null >> "$LOG" 2>&1 &
  echo $! > "$PIDFILE"
  log "started node $node (pid $(cat "$PIDFILE"), log $LOG)"
  local t
  for ((t = 0; t < READY_TIMEOUT * 2; t++)); do
    if grep -q 'Stop with Ctrl-C' "$LOG"; then
      log "node $node ready after ~$((t / 2)) s:"
      sed 's/^/  | /' "$LOG"
      return 0
    fi
    if ! running; then
      warn "node $node exited before it was ready:"
      sed 's/^/  | /' "$LOG" >&2
      rm -f "$PIDFILE"
      return 1
    fi
    sleep 0.5
  done
  warn "node $node not ready after ${READY_TIMEOUT} s (still running, pid $(cat "$PIDFILE")):"
  sed 's/^/  | /' "$LOG" >&2
  return 1
}

stop() {
  local pid t ok=0 nic ip vm node
  if ! running; then
    warn "no node running (pid file $PIDFILE: $(cat "$PIDFILE" 2>/dev/null || echo none))"
    [ -s "$LOG" ] && tail -n 20 "$LOG" | sed 's/^/  | /' >&2
    return 1
  fi
  pid=$(cat "$PIDFILE")
  kill -TERM "$pid"
  for ((t = 0; t < 120; t++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "node (pid $pid) still running 60 s after SIGTERM: killed"
    kill -KILL "$pid"
    ok=1
  else
    log "node (pid $pid) stopped after SIGTERM (~$((t / 2)) s)"
  fi
  rm -f "$PIDFILE"
  log "the node's last lines:"
  tail -n 5 "$LOG" | sed 's/^/  | /'

  # What start took and must have given back.
  node=$(cat "$NODEFILE")
  read -r nic ip vm < <(node -e '
    const t = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const n = t.nodes.find((x) => x.name === process.argv[2]);
    console.log(n.fabric_interface, n.fabric_ip, t.vms.find((v) => v.node === n.name).name);
  ' "$TOPO" "$node")
  if ip -o -4 addr show dev "$nic" | grep -qF " $ip "; then
    log "$nic has $ip back"
  else
    warn "$nic does not have $ip back: $(ip -o -4 addr show dev "$nic" | awk '{ print $4 }' | tr '\n' ' ')"
    ok=1
  fi
  if ip link show vhost0 >/dev/null 2>&1; then
    warn "vhost0 is still there"
    ok=1
  fi
  if [ -e "/run/netns/vm-$vm" ]; then
    warn "the VM's namespace vm-$vm is still there"
    ok=1
  fi
  if ip -o link | grep -qE ': tap[0-9a-f]{8}[@:]'; then
    warn "a VM TAP is still there: $(ip -o link | grep -oE 'tap[0-9a-f]{8}' | tr '\n' ' ')"
    ok=1
  fi
  [ "$ok" = 0 ] && log "the box is as the node found it"
  return "$ok"
}

case "$cmd" in
  start)
    shift 2
    start "$machine" "$@"
    ;;
  stop) stop ;;
  *) die "unknown command $cmd (start|stop)" ;;
esac
