/**
 * A fabric for end-to-end overlay tests: a namespace holding a Linux bridge (the underlay switch), one
 * namespace per compute node with a veth on the bridge named as the node's fabric interface (eth1, up,
 * no address), and optionally a kernel VXLAN VTEP with a host behind it (a bare-metal host). Names take
 * the test's prefix; `down()` removes all of it.
 */
import { execFileSync } from 'child_process';

function sh(cmd: string[]): string {
  return execFileSync(cmd[0], cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryDel(ns: string): void {
  try {
    sh(['ip', 'netns', 'del', ns]);
  } catch {
    // not there
  }
}

export interface Underlay {
  fabric: string;
  nodes: string[];
  all: string[];
  down(): void;
}

/** The bridge namespace `${p}-fab` with `br-fabric`, and node namespaces `${p}-n1`… with eth1 on it. */
export function underlayUp(p: string, nodes: number): Underlay {
  const fabric = `${p}-fab`;
  const names = Array.from({ length: nodes }, (_, k) => `${p}-n${k + 1}`);
  const all = [fabric, ...names];
  for (const ns of all) tryDel(ns);
  sh(['ip', 'netns', 'add', fabric]);
  sh(['ip', '-n', fabric, 'link', 'set', 'lo', 'up']);
  sh(['ip', '-n', fabric, 'link', 'add', 'br-fabric', 'type', 'bridge']);
  sh(['ip', '-n', fabric, 'link', 'set', 'br-fabric', 'up']);
  names.forEach((ns, k) => {
    sh(['ip', 'netns', 'add', ns]);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    // Created inside the fabric namespace, one end moved: no name is ever taken in the host's.
    sh(['ip', '-n', fabric, 'link', 'add', `f${k + 1}`, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns]);
    sh(['ip', '-n', fabric, 'link', 'set', `f${k + 1}`, 'master', 'br-fabric', 'up']);
    // Wire-size frames only, as the testbed's switch (src/io/cluster.ts says why).
    sh(['ip', '-n', fabric, 'link', 'set', 'dev', `f${k + 1}`, 'gso_max_segs', '1']);
    sh(['ip', '-n', ns, 'link', 'set', 'eth1', 'up']);
  });
  return { fabric, nodes: names, all, down: () => all.forEach(tryDel) };
}

export interface Vtep {
  vtep: string;
  host: string;
  down(): void;
}

/**
 * A kernel VXLAN VTEP `${p}-vtep` on the fabric (its address `vtepCidr`), device vxlan<VNI> on UDP 4789
 * without learning, in a bridge with a veth to the host namespace `${p}-bms` (eth0: `hostCidr`, `mac`,
 * MTU 1450 so that its frames fit the 1500-byte fabric, default route via `gateway`); static fdb
 * entries: every node for broadcast, `macs` (a VM MAC → its node's address) for unicast.
 */
export function vtepUp(p: string, u: Underlay, o: { vni: number; vtepCidr: string; vtepIp: string; nodeIps: string[]; hostCidr: string; mac: string; gateway: string; macs: [string, string][] }): Vtep {
  const vtep = `${p}-vtep`;
  const host = `${p}-bms`;
  for (const ns of [vtep, host]) tryDel(ns);
  sh(['ip', 'netns', 'add', vtep]);
  sh(['ip', 'netns', 'add', host]);
  sh(['ip', '-n', vtep, 'link', 'set', 'lo', 'up']);
  sh(['ip', '-n', host, 'link', 'set', 'lo', 'up']);
  sh(['ip', '-n', u.fabric, 'link', 'add', 'fv', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', vtep]);
  sh(['ip', '-n', u.fabric, 'link', 'set', 'fv', 'master', 'br-fabric', 'up']);
  sh(['ip', '-n', u.fabric, 'link', 'set', 'dev', 'fv', 'gso_max_segs', '1']);
  sh(['ip', '-n', vtep, 'addr', 'add', o.vtepCidr, 'dev', 'eth1']);
  sh(['ip', '-n', vtep, 'link', 'set', 'eth1', 'up']);
  const vx = `vxlan${o.vni}`;
  sh(['ip', '-n', vtep, 'link', 'add', vx, 'type', 'vxlan', 'id', String(o.vni), 'local', o.vtepIp, 'dstport', '4789', 'nolearning']);
  sh(['ip', '-n', vtep, 'link', 'add', 'br0', 'type', 'bridge']);
  sh(['ip', '-n', vtep, 'link', 'set', vx, 'master', 'br0', 'up']);
  sh(['ip', '-n', vtep, 'link', 'add', 'hb', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host]);
  sh(['ip', '-n', vtep, 'link', 'set', 'hb', 'master', 'br0', 'up']);
  sh(['ip', '-n', vtep, 'link', 'set', 'br0', 'up']);
  for (const n of o.nodeIps) sh(['bridge', '-n', vtep, 'fdb', 'append', '00:00:00:00:00:00', 'dev', vx, 'dst', n]);
  for (const [m, n] of o.macs) sh(['bridge', '-n', vtep, 'fdb', 'append', m, 'dev', vx, 'dst', n]);
  sh(['ip', '-n', host, 'link', 'set', 'eth0', 'address', o.mac, 'mtu', '1450']);
  sh(['ip', '-n', host, 'addr', 'add', o.hostCidr, 'dev', 'eth0']);
  sh(['ip', '-n', host, 'link', 'set', 'eth0', 'up']);
  sh(['ip', '-n', host, 'route', 'add', 'default', 'via', o.gateway]);
  return { vtep, host, down: () => [vtep, host].forEach(tryDel) };
}
