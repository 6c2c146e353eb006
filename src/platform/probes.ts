/**
 * What the emulator needs from the running kernel, probed: /dev/net/tun and its features
 * (TUNGETFEATURES), CAP_NET_ADMIN, network namespaces with `ip netns`, veth pairs, packet sockets.
 * The namespace and veth probes create a namespace of their own and delete it.
 * @module
 */
import * as fs from 'fs';
import { spawnSync } from 'child_process';
import { loadNative } from '../io/native';

export interface Probe {
  name: string;
  ok: boolean;
  detail: string;
}

const CAP_NET_ADMIN = 12;

function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.error) return { ok: false, err: (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'the ip command (iproute2) is missing' : r.error.message };
  return { ok: r.status === 0, err: (r.stderr ?? '').trim() };
}

export function runProbes(): Probe[] {
  const out: Probe[] = [];
  let nat: ReturnType<typeof loadNative> | undefined;
  try {
    nat = loadNative();
    out.push({ name: 'C addon', ok: true, detail: 'build/Release/vrouter_native.node loads' });
  } catch (e) {
    out.push({ name: 'C addon', ok: false, detail: (e as Error).message });
  }

  if (!fs.existsSync('/dev/net/tun')) {
    out.push({ name: '/dev/net/tun', ok: false, detail: 'missing: modprobe tun, or mknod /dev/net/tun c 10 200' });
  } else if (nat) {
    try {
      const f = nat.tunFeatures();
      const c = nat.constants;
      const bits: [string, number][] = [['IFF_TAP', c.IFF_TAP], ['IFF_NO_PI', c.IFF_NO_PI], ['IFF_MULTI_QUEUE', c.IFF_MULTI_QUEUE], ['IFF_VNET_HDR', c.IFF_VNET_HDR]];
      out.push({ name: '/dev/net/tun', ok: true, detail: 'opens' });
      const missing = bits.filter(([n, b]) => (f & b) === 0 && n !== 'IFF_MULTI_QUEUE').map(([n]) => n);
      out.push({
        name: 'TUNGETFEATURES', ok: missing.length === 0,
        detail: bits.map(([n, b]) => `${n} ${f & b ? 'yes' : 'no'}`).join(', ') + (missing.length ? `; the emulator needs ${missing.join(', ')}` : ''),
      });
    } catch (e) {
      out.push({ name: '/dev/net/tun', ok: false, detail: (e as Error).message });
    }
  }

  let capOk = false;
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    capOk = m !== null && (parseInt(m[1].slice(-4), 16) & (1 << CAP_NET_ADMIN)) !== 0; // bit 12: in the last 4 hex digits
  } catch {
    // no /proc: reported as missing
  }
  out.push({ name: 'CAP_NET_ADMIN', ok: capOk, detail: capOk ? 'held' : 'not held: run as root (sudo)' });

  const ns = `vremu-probe-${process.pid}`;
  const add = capOk ? ip(['netns', 'add', ns]) : { ok: false, err: 'needs CAP_NET_ADMIN' };
  out.push({ name: 'network namespaces', ok: add.ok && fs.existsSync('/proc/self/ns/net'), detail: add.ok ? 'ip netns add/del work' : `ip netns add failed: ${add.err}` });
  if (add.ok) {
    const veth = ip(['-n', ns, 'link', 'add', 'vp0', 'type', 'veth', 'peer', 'name', 'vp1']);
    out.push({ name: 'veth', ok: veth.ok, detail: veth.ok ? 'a veth pair can be created' : `ip link add type veth failed: ${veth.err}` });
    ip(['netns', 'del', ns]);
  } else {
    out.push({ name: 'veth', ok: false, detail: 'not probed (no namespace)' });
  }

  if (nat && capOk) {
    try {
      const { fd, io } = nat.packetOpen('lo', 'ring');
      nat.close(fd);
      const how = io === 'ring' ? 'read through a TPACKET_V2 ring' : 'read by recvmmsg (no ring with virtio-net headers before 4.9)';
      out.push({ name: 'packet sockets', ok: true, detail: `AF_PACKET with PACKET_VNET_HDR, ${how} (attached interfaces, qemu guests)` });
    } catch (e) {
      out.push({ name: 'packet sockets', ok: false, detail: (e as Error).message });
    }
  }
  return out;
}
