/**
 * 802.1Q tags on attached interfaces. The kernel takes the outer VLAN tag (0x8100 or 0x88a8, VLAN 0
 * priority tags too) out of every frame a veth or tap receives, even with no VLAN device on it, and a
 * packet socket hands the frame over untagged with the tag in its metadata. The addon puts it back: on
 * each read path ("ring", "ring-v3", "recvmmsg") frames written tagged by a plain raw socket in a
 * namespace come out of packetReadBatch byte for byte as sent (the V2 ring's copy path too, with jumbo
 * frames), untagged frames unchanged, and a slot without room for the tag drops the frame (counted)
 * instead of truncating it. Guest offloads with a tag (a tap with IFF_VNET_HDR: TSO super-frames and
 * partial checksums, 802.1Q, QinQ) come out completed and segmented, each segment tagged. Tagged frames
 * the emulator writes with packetWriteBatch leave tagged, and a TAP read (tun) keeps the tag the kernel
 * had taken out of a bridged frame.
 *
 * Not covered: GSO/checksum offload from a real TCP socket behind a VLAN device (this host's kernel has
 * no 8021q module; the tap's virtio-net header hands the kernel the same super-frames instead), and a
 * full-size (1518-byte) 802.1ad frame: the kernel's packet socket refuses it on a 1500-byte MTU
 * (EMSGSIZE; the 4 bytes over the MTU are allowed only with TPID 0x8100).
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import { e2e } from '../helpers/requires';
import { waitFor } from '../helpers/wait';
import { tcpFrame, udpFrame, type IpOpts } from '../../src/io/frame-build';
import {
  loadNative, PACKET_IOS, PACKET_STAGE_BYTES, PS_COUNT_LEN, PS_CSUM, PS_DROPPED, PS_GSO_FRAMES, PS_GSO_SEGS, type PacketIo,
} from '../../src/io/native';

const rootTest = e2e({ root: true, tools: ['ip', 'python3'] }).serial;

const nat = loadNative();
const SLOT = 9216 + 32; // the datapath worker's slot (src/io/dp-worker.ts)
const MAX = 256;

/** Everything a test made, removed when it ends (and at the end of the file, should a teardown not run). */
const netnses = new Set<string>();
const links = new Set<string>();
const fds = new Set<number>();

function cleanup(): void {
  for (const fd of fds) {
    try {
      nat.close(fd);
    } catch {
      // closed already
    }
  }
  fds.clear();
  for (const l of links) spawnSync('ip', ['link', 'del', l]);
  links.clear();
  for (const ns of netnses) spawnSync('ip', ['netns', 'del', ns]);
  netnses.clear();
}
test.after.always(cleanup);

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

const noIpv6 = (ifname: string): void => fs.writeFileSync(`/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`, '1');

interface Bed {
  /** The run's prefix (vt + 4 hex digits): names of its namespace and interfaces. */
  p: string;
  ns: string;
  /** The veth end in this namespace, the emulator's side. */
  host: string;
  /** The source MAC of every frame the test sends, to tell them from the kernel's own. */
  src: number[];
}

/** A namespace `${p}n` whose eth0 pairs with `${p}h` here (both up, IPv6 off); removed when the test ends. */
function bed(t: ExecutionContext, mtu = 1500): Bed {
  const p = `vt${randomBytes(2).toString('hex')}`;
  const ns = `${p}n`;
  const host = `${p}h`;
  t.teardown(cleanup);
  ip('netns', 'add', ns);
  netnses.add(ns);
  ip('link', 'add', host, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', ns);
  links.add(host);
  noIpv6(host);
  ip('netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1');
  ip('link', 'set', host, 'up');
  ip('-n', ns, 'link', 'set', 'eth0', 'up');
  const r = randomBytes(2);
  return { p, ns, host, src: [0x02, 0x76, 0x74, r[0], r[1], 0x01] };
}

const DST = [0x02, 0x76, 0x74, 0x00, 0x00, 0x02];

/** A frame DST <- src with the tags (outer first), EtherType 0x88b5 and `len` bytes in all. */
function frame(src: number[], tags: [number, number][], len: number, mark: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set(DST, 0);
  f.set(src, 6);
  let o = 12;
  for (const [tpid, tci] of tags) {
    f[o] = tpid >> 8;
    f[o + 1] = tpid & 0xff;
    f[o + 2] = tci >> 8;
    f[o + 3] = tci & 0xff;
    o += 4;
  }
  f[o] = 0x88;
  f[o + 1] = 0xb5;
  for (let k = o + 2; k < len; k++) f[k] = (mark + k * 13) & 0xff;
  f[o + 2] = mark;
  return f;
}

/** f with the tags inserted after its MAC addresses (outer first). */
function tagged(f: Uint8Array, tags: [number, number][]): Uint8Array {
  const out = new Uint8Array(f.length + 4 * tags.length);
  out.set(f.subarray(0, 12), 0);
  tags.forEach(([tpid, tci], k) => out.set([tpid >> 8, tpid & 0xff, tci >> 8, tci & 0xff], 12 + 4 * k));
  out.set(f.subarray(12), 12 + 4 * tags.length);
  return out;
}

/** The frames of the receive tests: [what, frame]. */
function cases(src: number[]): [string, Uint8Array][] {
  const ipo: IpOpts = { src: '10.77.0.1', dst: '10.77.0.2', srcMac: src.map((b) => b.toString(16).padStart(2, '0')).join(':'), dstMac: '02:76:74:00:00:02' };
  return [
    ['untagged', frame(src, [], 60, 1)],
    ['VLAN 100', frame(src, [[0x8100, 100]], 64, 2)],
    ['VLAN 4094, priority 7', frame(src, [[0x8100, 0xe000 | 4094]], 64, 3)],
    ['VLAN 100, priority 1, DEI', frame(src, [[0x8100, 0x2000 | 0x1000 | 100]], 64, 4)],
    ['priority tag (VLAN 0, priority 5)', frame(src, [[0x8100, 0xa000]], 64, 5)],
    ['802.1ad (TPID 0x88a8) VLAN 200', frame(src, [[0x88a8, 200]], 64, 6)],
    ['QinQ: 802.1ad 300 outside, 802.1Q 100 inside', frame(src, [[0x88a8, 300], [0x8100, 100]], 68, 7)],
    ['IPv4/UDP in VLAN 100', tagged(udpFrame(ipo, { sport: 5000, dport: 6000, payload: 100 }), [[0x8100, 100]])],
    ['1518 bytes with VLAN 4094', frame(src, [[0x8100, 4094]], 1518, 8)],
    ['1514 bytes untagged', frame(src, [], 1514, 9)],
  ];
}

const SEND = `
import binascii, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.bind((sys.argv[1], 0))
for line in sys.stdin:
    if line.strip():
        s.send(binascii.unhexlify(line.strip()))
`;

/** Write the frames on eth0 of namespace ns with a plain raw socket (python3). */
function sendFrom(ns: string, frames: Uint8Array[]): void {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'python3', '-c', SEND, 'eth0'], {
    input: frames.map((f) => Buffer.from(f).toString('hex')).join('\n') + '\n', encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`sending in ${ns}: ${r.stderr}`);
}

const hex = (f: Uint8Array): string => Buffer.from(f).toString('hex');
const fromSrc = (f: Uint8Array, src: number[]): boolean => f.length >= 12 && src.every((b, k) => f[6 + k] === b);

/** Read the packet socket fd until `want` frames from `src` came (or `ms` passed); their bytes in order. */
async function readFrames(fd: number, src: number[], want: number, stats: Float64Array, slot = SLOT, ms = 3000): Promise<Uint8Array[]> {
  const buf = new Uint8Array(slot * MAX);
  const lens = new Int32Array(MAX);
  const stage = new Uint8Array(PACKET_STAGE_BYTES);
  const got: Uint8Array[] = [];
  const end = Date.now() + ms;
  while (got.length < want && Date.now() < end) {
    const n = nat.packetReadBatch(fd, buf, slot, MAX, lens, stage, stats);
    for (let k = 0; k < n; k++) {
      const f = buf.slice(k * slot, k * slot + lens[k]);
      if (fromSrc(f, src)) got.push(f);
    }
    if (n === 0) await new Promise((r) => setTimeout(r, 5));
  }
  return got;
}

function open(ifname: string, io: PacketIo): number {
  const p = nat.packetOpen(ifname, io);
  fds.add(p.fd);
  return p.fd;
}

for (const io of PACKET_IOS) {
  rootTest(`${io}: tagged frames come out as they were sent (802.1Q, priority bits, 802.1ad, QinQ, 1518 bytes), untagged ones unchanged`, async (t) => {
    const b = bed(t);
    const p = nat.packetOpen(b.host, io);
    fds.add(p.fd);
    t.is(p.io, io, 'this kernel has the read path');
    const all = cases(b.src);
    const stats = new Float64Array(PS_COUNT_LEN);
    sendFrom(b.ns, all.map(([, f]) => f));
    const got = await readFrames(p.fd, b.src, all.length, stats);
    t.is(got.length, all.length, 'every frame was read');
    all.forEach(([what, f], k) => t.is(got[k] === undefined ? '(none)' : hex(got[k]), hex(f), what));
    t.is(stats[PS_DROPPED], 0);

    // A slot one byte short of the tagged frame: dropped and counted, not truncated.
    const small = new Float64Array(PS_COUNT_LEN);
    sendFrom(b.ns, [frame(b.src, [[0x8100, 100]], 1518, 10), frame(b.src, [], 1514, 11)]);
    const cut = await readFrames(p.fd, b.src, 1, small, 1517);
    t.deepEqual(cut.map((f) => f.length), [1514], 'the 1514-byte untagged frame fits, the 1518-byte tagged one does not');
    t.is(small[PS_DROPPED], 1, 'and is counted');
  });

  rootTest(`${io}: jumbo frames keep their tags (9018 bytes${io === 'ring' ? ', larger than a slot: received from the socket queue' : ''})`, async (t) => {
    const b = bed(t, 9000);
    const fd = open(b.host, io);
    const all: [string, Uint8Array][] = [
      ['9018 bytes with VLAN 100, priority 3', frame(b.src, [[0x8100, 0x6000 | 100]], 9018, 21)],
      ['9014 bytes with 802.1ad VLAN 4000', frame(b.src, [[0x88a8, 4000]], 9014, 22)],
      ['9014 bytes untagged', frame(b.src, [], 9014, 23)],
      ['a small one after them, VLAN 7', frame(b.src, [[0x8100, 7]], 64, 24)],
    ];
    const stats = new Float64Array(PS_COUNT_LEN);
    sendFrom(b.ns, all.map(([, f]) => f));
    const got = await readFrames(fd, b.src, all.length, stats);
    t.is(got.length, all.length);
    all.forEach(([what, f], k) => t.is(got[k] === undefined ? '(none)' : hex(got[k]), hex(f), what));
    t.is(stats[PS_DROPPED], 0);
  });
}

// ---------------------------------------------------------------------------------------------------
// Guest offloads with tags: a tap with IFF_VNET_HDR, written with virtio-net headers, read by packet socket.

/** A virtio-net header (little-endian, as tun has it on this host) followed by the frame. */
function vnet(f: Uint8Array, h: { csumStart?: number; csumOffset?: number; gsoTcp4?: boolean; hdrLen?: number; gsoSize?: number }): Uint8Array {
  const out = new Uint8Array(10 + f.length);
  const dv = new DataView(out.buffer);
  if (h.csumStart !== undefined) {
    out[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
    dv.setUint16(6, h.csumStart, true);
    dv.setUint16(8, h.csumOffset ?? 0, true);
  }
  if (h.gsoTcp4) {
    out[1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4
    dv.setUint16(2, h.hdrLen ?? 0, true);
    dv.setUint16(4, h.gsoSize ?? 0, true);
  }
  out.set(f, 10);
  return out;
}

/** The frame f (IPv4 at l3) with its TCP/UDP checksum replaced by the folded pseudo-header sum, as a guest with checksum offload sends it. */
function partial(f: Uint8Array, l3: number): Uint8Array {
  const g = f.slice();
  const ihl = (g[l3] & 15) * 4;
  const l4len = ((g[l3 + 2] << 8) | g[l3 + 3]) - ihl;
  let s = g[l3 + 9] + l4len;
  for (let i = l3 + 12; i < l3 + 20; i += 2) s += (g[i] << 8) | g[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const at = l3 + ihl + (g[l3 + 9] === 6 ? 16 : 6);
  g[at] = s >> 8;
  g[at + 1] = s & 0xff;
  return g;
}

rootTest('offloads with tags: TSO super-frames are cut into tagged segments, partial checksums completed under the tag (every read path)', async (t) => {
  t.timeout(60000);
  const p = `vt${randomBytes(2).toString('hex')}`;
  t.teardown(cleanup);
  const r = randomBytes(2);
  const src = [0x02, 0x76, 0x74, r[0], r[1], 0x01];
  const ipo = (id: number): IpOpts => ({ src: '10.77.1.1', dst: '10.77.1.2', id, srcMac: src.map((x) => x.toString(16).padStart(2, '0')).join(':'), dstMac: '02:76:74:00:00:02' });
  const data = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, k) => (k * 31 + seed) & 0xff);
  const q100: [number, number][] = [[0x8100, 100]];
  const qinq: [number, number][] = [[0x88a8, 300], [0x8100, 100]];
  const ad: [number, number][] = [[0x88a8, 200]];
  /** A TSO super-frame with `tags` and what it must come out as: the segments, each with the tags. */
  const tso = (tags: [number, number][], len: number, mss: number, seed: number): [Uint8Array, Uint8Array[]] => {
    const pl = data(len, seed);
    const l3 = 14 + 4 * tags.length;
    const sup = tagged(partial(tcpFrame(ipo(0x1000 + seed), { sport: 40000 + seed, dport: 5201, seq: 1000 + seed, ack: 7, flags: 'AP', payload: pl }), 14), tags);
    const segs: Uint8Array[] = [];
    for (let off = 0, k = 0; off < len; off += mss, k++) {
      const last = off + mss >= len;
      segs.push(tagged(tcpFrame(ipo(0x1000 + seed + k), { sport: 40000 + seed, dport: 5201, seq: 1000 + seed + off, ack: 7, flags: last ? 'AP' : 'A', payload: pl.subarray(off, Math.min(len, off + mss)) }), tags));
    }
    return [vnet(sup, { csumStart: l3 + 20, csumOffset: 16, gsoTcp4: true, hdrLen: l3 + 40, gsoSize: mss }), segs];
  };
  /** A frame with a partial checksum and what it must come out as. */
  const csum = (tags: [number, number][], full: Uint8Array): [Uint8Array, Uint8Array[]] => {
    const l3 = 14 + 4 * tags.length;
    return [vnet(tagged(partial(full, 14), tags), { csumStart: l3 + 20, csumOffset: full[23] === 6 ? 16 : 6 }), [tagged(full, tags)]];
  };
  const writes: [string, [Uint8Array, Uint8Array[]]][] = [
    ['TSO in VLAN 100: 4000 bytes at MSS 1448', tso(q100, 4000, 1448, 1)],
    ['TSO in QinQ (802.1ad 300 / 802.1Q 100): 2500 bytes at MSS 1000', tso(qinq, 2500, 1000, 2)],
    ['TSO untagged: 3000 bytes at MSS 1448', tso([], 3000, 1448, 3)],
    ['partial UDP checksum in VLAN 4094, priority 6', csum([[0x8100, 0xc000 | 4094]], udpFrame(ipo(9), { sport: 53, dport: 5353, payload: data(301, 4) }))],
    ['partial TCP checksum in 802.1ad 200', csum(ad, tcpFrame(ipo(10), { sport: 22, dport: 2222, seq: 5, flags: 'AP', payload: data(700, 5) }))],
    ['partial TCP checksum untagged', csum([], tcpFrame(ipo(11), { sport: 80, dport: 8080, seq: 9, flags: 'A', payload: data(999, 6) }))],
  ];
  const want = writes.flatMap(([what, [, out]]) => out.map((f, k) => [`${what}, frame ${k + 1}/${out.length}`, f] as const));

  for (const io of PACKET_IOS) {
    const tap = `${p}${io === 'ring' ? 'a' : io === 'ring-v3' ? 'b' : 'c'}`;
    const c = nat.constants;
    const tfd = nat.tapOpen(tap, c.IFF_TAP | c.IFF_NO_PI | c.IFF_VNET_HDR).fd;
    fds.add(tfd);
    noIpv6(tap);
    ip('link', 'set', tap, 'up');
    const pfd = open(tap, io);
    for (const [, [w]] of writes) t.is(nat.writeFrame(tfd, w, 0, w.length), w.length);
    const stats = new Float64Array(PS_COUNT_LEN);
    const got = await readFrames(pfd, src, want.length, stats);
    t.is(got.length, want.length, `${io}: every segment and frame was read`);
    want.forEach(([what, f], k) => t.is(got[k] === undefined ? '(none)' : hex(got[k]), hex(f), `${io}: ${what}`));
    t.is(stats[PS_GSO_FRAMES], 3, `${io}: three TSO frames`);
    t.is(stats[PS_GSO_SEGS], 3 + 3 + 3, `${io}: nine segments`);
    t.is(stats[PS_CSUM], 3, `${io}: three checksums completed`);
    t.is(stats[PS_DROPPED], 0, `${io}: nothing dropped`);
    nat.close(pfd);
    fds.delete(pfd);
    nat.close(tfd);
    fds.delete(tfd);
  }
});

// ---------------------------------------------------------------------------------------------------
// The other directions.

const RECV = `
import json, select, socket, struct, sys, time
ifn, src, want, ms = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifn, 0))
s.setsockopt(263, 8, 1)  # SOL_PACKET, PACKET_AUXDATA: the tag the kernel took out
print('ready', flush=True)
end = time.time() + ms / 1000.0
n = 0
while n < want:
    left = end - time.time()
    if left <= 0 or not select.select([s], [], [], left)[0]:
        break
    d, anc, fl, addr = s.recvmsg(65536, socket.CMSG_SPACE(20))
    if d[6:12] != src or addr[2] == socket.PACKET_OUTGOING:
        continue
    vlan = None
    for lvl, typ, a in anc:
        if lvl == 263 and typ == 8:
            st, ln, sn, mac, net, tci, tpid = struct.unpack('IIIHHHH', a[:20])
            if st & 0x10:
                vlan = [tpid if st & 0x40 else 0x8100, tci]
    print(json.dumps({'hex': d.hex(), 'vlan': vlan}), flush=True)
    n += 1
`;

rootTest('transmit: tagged frames written with packetWriteBatch arrive tagged (the receiver\'s kernel reports the tag, the rest is as written)', async (t) => {
  const b = bed(t);
  const fd = open(b.host, 'ring');
  const all = cases(b.src);
  const rx = spawn('ip', ['netns', 'exec', b.ns, 'python3', '-c', RECV, 'eth0', hex(Uint8Array.from(b.src)), String(all.length), '5000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  rx.stdout.on('data', (d: Buffer) => (out += d.toString()));
  rx.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => rx.on('exit', () => r()));
  t.teardown(() => rx.kill('SIGKILL'));
  const until = Date.now() + 10000;
  while (!out.startsWith('ready') && Date.now() < until && rx.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  t.true(out.startsWith('ready'), `the receiver started: ${err}`);
  const slab = new Uint8Array(SLOT * all.length);
  all.forEach(([, f], k) => slab.set(f, k * SLOT));
  const offs = Int32Array.from(all, (_, k) => k * SLOT);
  const lens = Int32Array.from(all, ([, f]) => f.length);
  t.is(nat.packetWriteBatch(fd, slab, offs, lens, all.length), all.length, 'all written');
  await exited;
  const seen = out.split('\n').slice(1).filter((l) => l !== '').map((l) => JSON.parse(l) as { hex: string; vlan: [number, number] | null });
  t.is(seen.length, all.length, `every frame arrived: ${err}`);
  all.forEach(([what, f], k) => {
    const s = seen[k];
    if (s === undefined) return;
    const type = (f[12] << 8) | f[13];
    const outer: [number, number] | null = type === 0x8100 || type === 0x88a8 ? [type, (f[14] << 8) | f[15]] : null;
    t.deepEqual(s.vlan, outer, `${what}: the tag on the wire`);
    const rest = outer === null ? f : Uint8Array.from([...f.subarray(0, 12), ...f.subarray(16)]);
    t.is(s.hex, hex(rest), `${what}: the rest of the frame`);
  });
});

rootTest('TAP reads keep tags: a frame whose tag the kernel took out (received on a veth, bridged to a tap) is read from the tap tagged', async (t) => {
  const b = bed(t);
  const br = `${b.p}b`;
  const tap = `${b.p}t`;
  const c = nat.constants;
  const tfd = nat.tapOpen(tap, c.IFF_TAP | c.IFF_NO_PI).fd; // as the emulator opens its TAPs
  fds.add(tfd);
  ip('link', 'add', 'name', br, 'type', 'bridge');
  links.add(br);
  noIpv6(br);
  noIpv6(tap);
  ip('link', 'set', b.host, 'master', br);
  ip('link', 'set', tap, 'master', br);
  ip('link', 'set', tap, 'up');
  ip('link', 'set', br, 'up');
  // Without STP a port forwards as soon as it is up; wait for both to say so (3: BR_STATE_FORWARDING).
  await waitFor(() => [b.host, tap].every((l) => fs.readFileSync(`/sys/class/net/${l}/brport/state`, 'utf8').trim() === '3'), { timeoutMs: 5000, what: 'the bridge ports to forward' });
  const all = cases(b.src);
  const buf = new Uint8Array(SLOT * MAX);
  const lens = new Int32Array(MAX);
  const got: Uint8Array[] = [];
  sendFrom(b.ns, all.map(([, f]) => f));
  const end = Date.now() + 3000;
  while (got.length < all.length && Date.now() < end) {
    const n = nat.readBatch(tfd, buf, SLOT, MAX, lens);
    for (let k = 0; k < n; k++) {
      const f = buf.slice(k * SLOT, k * SLOT + lens[k]);
      if (fromSrc(f, b.src)) got.push(f);
    }
    if (n === 0) await new Promise((r) => setTimeout(r, 5));
  }
  t.is(got.length, all.length);
  all.forEach(([what, f], k) => t.is(got[k] === undefined ? '(none)' : hex(got[k]), hex(f), what));
});
