/**
 * The addon's packet-socket path on real veth pairs, read through the TPACKET_V3 ring and through
 * recvmmsg: partial checksums completed, TSO super-frames cut into valid segments (a real TCP transfer
 * relayed between two namespaces through packetReadBatch and packetWriteBatch), own transmissions not
 * read back, frames lost on a full ring or buffer counted, errors of a vanished interface.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn, spawnSync } from 'child_process';
import { e2e } from '../helpers/requires';
import { waitListening } from '../helpers/wait';
import { loadNative, type PacketIo, PACKET_STAGE_BYTES, PS_COUNT_LEN, PS_CSUM, PS_DROPPED, PS_GSO_FRAMES, PS_GSO_SEGS, PS_OUTGOING, PS_SOCK_DROPS } from '../../src/io/native';

// Veth pairs in namespaces: root and ip; the TCP transfer also runs nc in the namespaces.
const rootTest = e2e({ root: true, tools: ['ip'] }).serial;
const transferTest = e2e({ root: true, tools: ['ip', 'nc'] }).serial;

const nat = loadNative();
const SLOT = 9248;
const MAX = 256;
const tag = `pk${process.pid % 100000}`;
const made: string[] = [];
const fds: number[] = [];

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A namespace `${tag}${n}` whose eth0 (10.9.0.n/24, TSO on as veth has it) pairs with host-side `${tag}h${n}`. */
function vm(n: number): { ns: string; host: string; ip: string } {
  const ns = `${tag}${n}`;
  const host = `${tag}h${n}`;
  ip('netns', 'add', ns);
  made.push(ns);
  ip('link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  ip('link', 'set', host, 'up');
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'link', 'set', 'eth0', 'up');
  ip('-n', ns, 'addr', 'add', `10.9.0.${n}/24`, 'dev', 'eth0');
  return { ns, host, ip: `10.9.0.${n}` };
}

test.after.always(() => {
  for (const fd of fds) {
    try {
      nat.close(fd);
    } catch {
      // closed by the test
    }
  }
  for (const ns of made) spawnSync('ip', ['netns', 'del', ns]);
});

/** Whether the IPv4 header and TCP/UDP checksum of the frame f are right. */
function checksumsRight(f: Uint8Array): boolean {
  const ihl = (f[14] & 15) * 4;
  const tot = (f[16] << 8) | f[17];
  let s = 0;
  for (let i = 0; i < ihl; i += 2) s += (f[14 + i] << 8) | f[15 + i];
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  if (s !== 0xffff) return false;
  const len = tot - ihl;
  const l4 = 14 + ihl;
  s = f[23] + len;
  for (let i = 26; i < 34; i += 2) s += (f[i] << 8) | f[i + 1];
  for (let i = 0; i < len; i += 2) s += (f[l4 + i] << 8) | (i + 1 < len ? f[l4 + i + 1] : 0);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s === 0xffff;
}

const isTcpOrUdp4 = (f: Uint8Array): boolean => f[12] === 8 && f[13] === 0 && (f[23] === 6 || f[23] === 17);

type Io = PacketIo;

/** packetOpen with the receive path `io`, closed when the file's tests end. */
function open(ifname: string, io: Io): { fd: number; ifindex: number; io: Io } {
  const p = nat.packetOpen(ifname, io);
  fds.push(p.fd);
  return p;
}

/** A shell command in namespace ns, in its own process group, killed with it when the test ends. */
function nsSpawn(t: ExecutionContext, ns: string, cmd: string): ReturnType<typeof spawn> {
  const c = spawn('ip', ['netns', 'exec', ns, 'sh', '-c', cmd], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  t.teardown(() => {
    try {
      process.kill(-(c.pid as number), 'SIGKILL');
    } catch {
      // gone
    }
  });
  return c;
}

for (const [io, base] of [['ring', 1], ['recvmmsg', 4], ['ring-v3', 8]] as const) {
transferTest(`${io}: a TCP transfer with TSO and checksum offload, relayed between two veths: segments valid, data intact`, async (t) => {
  t.timeout(60000);
  const a = vm(base);
  const b = vm(base + 1);
  const pa = open(a.host, io);
  const pb = open(b.host, io);
  t.is(pa.io, io);
  const buf = new Uint8Array(SLOT * MAX);
  const lens = new Int32Array(MAX);
  const offs = Int32Array.from({ length: MAX }, (_, k) => k * SLOT);
  const stage = new Uint8Array(PACKET_STAGE_BYTES);
  const stats = new Float64Array(PS_COUNT_LEN);
  let bad = 0;
  let biggest = 0;
  let relayed = 0;
  const relay = (from: number, to: number): void => {
    const n = nat.packetReadBatch(from, buf, SLOT, MAX, lens, stage, stats);
    for (let k = 0; k < n; k++) {
      const f = buf.subarray(k * SLOT, k * SLOT + lens[k]);
      if (isTcpOrUdp4(f) && !checksumsRight(f)) bad++;
      biggest = Math.max(biggest, lens[k]);
    }
    if (n > 0) relayed += nat.packetWriteBatch(to, buf, offs, lens, n);
  };
  // 4 MB of random data from a to b; each side prints the md5 of what it sent or received.
  const server = nsSpawn(t, b.ns, 'nc -d -l -p 5001 | md5sum');
  let got = '';
  server.stdout?.on('data', (d: Buffer) => (got += d.toString()));
  const done = new Promise<void>((res) => server.on('exit', () => res()));
  let running = true;
  void done.then(() => (running = false));
  const pump = (): void => {
    if (!running) return;
    relay(pa.fd, pb.fd);
    relay(pb.fd, pa.fd);
    if (running) setImmediate(pump);
  };
  pump();
  await waitListening(b.ns, 5001);
  // Asynchronous: the relay runs on this event loop.
  const client = nsSpawn(t, a.ns,
    `head -c 4000000 /dev/urandom > /tmp/pk-data.$$ && md5sum < /tmp/pk-data.$$ && nc -q 1 -w 5 ${b.ip} 5001 < /tmp/pk-data.$$; rm -f /tmp/pk-data.$$`);
  let sent = '';
  client.stdout?.on('data', (d: Buffer) => (sent += d.toString()));
  await Promise.race([done, new Promise((r) => setTimeout(r, 20000))]);
  running = false;
  t.is(got.split(' ')[0], sent.split(' ')[0], 'the receiver got the bytes the sender sent');
  t.true(stats[PS_GSO_FRAMES] > 0, 'the veth handed over TSO super-frames');
  t.true(stats[PS_GSO_SEGS] > stats[PS_GSO_FRAMES], 'and they were cut into several segments each');
  t.true(stats[PS_CSUM] > 0, 'partial checksums were completed');
  t.is(bad, 0, 'every TCP/UDP frame handed on has right checksums');
  t.true(biggest <= 1514, `no frame above the MTU was handed on (biggest ${biggest})`);
  t.is(stats[PS_DROPPED], 0);
  t.is(stats[PS_OUTGOING], 0, 'PACKET_IGNORE_OUTGOING: our own transmissions are not read back');
  t.true(relayed > 2700);
  t.is(stats[PS_SOCK_DROPS], 0, 'nothing lost on the socket');
});

rootTest(`${io}: frames the kernel drops on a full ${io === 'recvmmsg' ? 'receive buffer' : 'ring'} are counted`, async (t) => {
  t.timeout(60000);
  const c = vm(base + 2);
  const p = open(c.host, io);
  // 30 000 UDP datagrams of 1 400 bytes (~45 MB) to a neighbour that exists only in the ARP table:
  // more than the 4 MiB V2 ring, the 16 MiB V3 ring or the 4 MiB buffer holds while nobody reads.
  ip('-n', c.ns, 'neigh', 'replace', '10.9.0.99', 'lladdr', '02:00:00:00:00:99', 'dev', 'eth0');
  const flood = nsSpawn(t, c.ns, `${process.execPath} -e "
    const s = require('dgram').createSocket('udp4'); const b = Buffer.alloc(1400); let n = 0;
    const go = () => { for (let k = 0; k < 500 && n < 30000; k++, n++) s.send(b, 9, '10.9.0.99'); n < 30000 ? setImmediate(go) : setTimeout(() => s.close(), 200); };
    go();"`);
  await new Promise<void>((r) => flood.on('exit', () => r()));
  const buf = new Uint8Array(SLOT * MAX);
  const lens = new Int32Array(MAX);
  const stage = new Uint8Array(PACKET_STAGE_BYTES);
  const stats = new Float64Array(PS_COUNT_LEN);
  let got = 0;
  // The addon reads the kernel's drop counters on every 64th empty read: read on until well past that.
  for (let idle = 0; idle < 100; ) {
    const n = nat.packetReadBatch(p.fd, buf, SLOT, MAX, lens, stage, stats);
    for (let k = 0; k < n; k++) if (lens[k] === 14 + 20 + 8 + 1400) got++;
    if (n === 0) {
      idle++;
      await new Promise((r) => setTimeout(r, 2));
    } else idle = 0;
  }
  t.true(got > 1000, `frames were received (${got})`);
  t.true(stats[PS_SOCK_DROPS] > 0, `the kernel's drops are counted (${stats[PS_SOCK_DROPS]})`);
  // The drops may include a few frames of the namespace's own (IPv6 router solicitations, …).
  t.true(got + stats[PS_SOCK_DROPS] <= 30000 + 20, `received ${got} + dropped ${stats[PS_SOCK_DROPS]} <= sent`);
});
}

rootTest('packetOpen: an unknown interface and a bad name are errors naming them', (t) => {
  const e = t.throws(() => nat.packetOpen(`${tag}nosuch`, 'ring'));
  t.is((e as NodeJS.ErrnoException).code, 'ENODEV');
  t.regex(e?.message ?? '', new RegExp(`${tag}nosuch`));
  t.throws(() => nat.packetOpen('x'.repeat(16), 'ring'), { message: /at most|1 to 15/ });
  t.throws(() => nat.packetOpen('lo', 'mmap' as 'ring'), { message: /ring.*ring-v3.*recvmmsg/ });
});

rootTest('an interface deleted under the socket: poll reports an error and sockError names it', (t) => {
  const c = vm(7);
  const p = open(c.host, 'ring');
  ip('link', 'del', c.host);
  const fdsArr = Int32Array.of(p.fd);
  const rev = new Int32Array(1);
  const n = nat.poll(fdsArr, 1, nat.constants.POLLIN, rev, 1000);
  t.is(n, 1);
  t.true((rev[0] & nat.constants.POLLERR) !== 0);
  t.is(nat.sockError(p.fd), 'ENETDOWN');
  t.is(nat.sockError(p.fd), '', 'reading the error clears it');
});
