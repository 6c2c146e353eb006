import test from 'ava';
import { execFileSync, spawnSync } from 'child_process';
import * as dgram from 'dgram';
import * as fs from 'fs';
import * as os from 'os';
import { Worker } from 'worker_threads';
import { udpFrame } from '../../src/io/frame-build';
import { isNativeError, loadNative, nativeAddonPath } from '../../src/io/native';
import { e2e } from '../helpers/requires';

// Tests that create TAPs or namespaces need root (and ip): skipped otherwise, the title says why;
// under CI=true they fail instead.
const rootTest = e2e({ root: true, tools: ['ip'] });

const nat = loadNative();
const { IFF_TAP, IFF_NO_PI, POLLIN, POLLERR } = nat.constants;
const TAP = IFF_TAP | IFF_NO_PI;

// Everything created here, removed in test.after.always also when a test fails half-way.
const openFds = new Set<number>();
const taps = new Set<string>();
const netnsName = `vrtns${process.pid}`;
let netnsMade = false;
let seq = 0;

function tapName(): string {
  return `vrt${process.pid}x${seq++}`; // at most 3 + 7 + 1 + 2 characters
}

function openTap(name = tapName()): { fd: number; name: string } {
  const t = nat.tapOpen(name, TAP);
  openFds.add(t.fd);
  taps.add(t.name);
  return t;
}

function closeFd(fd: number): void {
  openFds.delete(fd);
  nat.close(fd);
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function linkExists(name: string, netns?: string): boolean {
  const args = netns ? ['-n', netns, 'link', 'show', name] : ['link', 'show', name];
  return spawnSync('ip', args, { stdio: 'ignore' }).status === 0;
}

function rxPackets(name: string): number {
  return Number(fs.readFileSync(`/sys/class/net/${name}/statistics/rx_packets`, 'utf8'));
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

test.after.always(() => {
  for (const fd of openFds) {
    try {
      nat.close(fd);
    } catch {
      // already closed
    }
  }
  for (const name of taps) if (linkExists(name)) spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
  if (netnsMade) spawnSync('ip', ['netns', 'del', netnsName], { stdio: 'ignore' });
});

test('the addon loads from build/Release and has the constants', (t) => {
  t.regex(nativeAddonPath(), /build\/Release\/vrouter_native\.node$/);
  t.is(loadNative(), nat);
  t.like(nat.constants, { IFF_TAP: 0x0002, IFF_NO_PI: 0x1000, IFF_MULTI_QUEUE: 0x0100, IFF_VNET_HDR: 0x4000 });
  t.like(nat.constants, { POLLIN: 1, POLLOUT: 4, POLLERR: 8, POLLHUP: 16, POLLNVAL: 32, CLONE_NEWNET: 0x40000000 });
});

// /dev/net/tun is often mode 0600: reading the features needs root too.
rootTest('tunFeatures has IFF_TAP and IFF_NO_PI', (t) => {
  const f = nat.tunFeatures();
  t.is(f & IFF_TAP, IFF_TAP);
  t.is(f & IFF_NO_PI, IFF_NO_PI);
});

rootTest('tapOpen creates a TAP that ip link sees; closing its fd removes it', (t) => {
  const want = tapName();
  const tap = openTap(want);
  t.is(tap.name, want);
  t.true(Number.isInteger(tap.fd) && tap.fd > 2);
  t.regex(ip('link', 'show', want), new RegExp(`^\\d+: ${want}: `));
  closeFd(tap.fd);
  t.false(linkExists(want));
});

rootTest('tapOpen with an empty name gets a name from the kernel', (t) => {
  const tap = openTap('');
  t.regex(tap.name, /^tap\d+$/);
  t.true(linkExists(tap.name));
  closeFd(tap.fd);
  t.false(linkExists(tap.name));
});

rootTest('a second tapOpen of an attached TAP fails with EBUSY from TUNSETIFF', (t) => {
  const tap = openTap();
  const e = thrown(() => openTap(tap.name));
  t.true(isNativeError(e, 'EBUSY'), String(e));
  t.like(e as object, { code: 'EBUSY', errno: 16, syscall: 'TUNSETIFF', message: `TUNSETIFF ${tap.name}: Device or resource busy` });
  closeFd(tap.fd);
});

test('tapOpen rejects a name of 16 bytes with EINVAL from TUNSETIFF', (t) => {
  const e = thrown(() => nat.tapOpen('vrt-name-16-byte', TAP));
  t.true(e instanceof Error);
  t.like(e as object, { code: 'EINVAL', errno: 22, syscall: 'TUNSETIFF' });
});

rootTest('readBatch returns 0 on an idle TAP, poll times out on it', (t) => {
  const tap = openTap();
  const buf = new Uint8Array(4 * 2048);
  const lens = new Int32Array(4);
  t.is(nat.readBatch(tap.fd, buf, 2048, 4, lens), 0);
  const revents = new Int32Array(1).fill(-1);
  const t0 = Date.now();
  t.is(nat.poll(Int32Array.of(tap.fd), 1, POLLIN, revents, 50), 0);
  t.true(Date.now() - t0 >= 40);
  t.is(revents[0], 0);
  closeFd(tap.fd);
});

rootTest('writeBatch of 3 frames reaches the kernel on the TAP (rx_packets + 3)', (t) => {
  const tap = openTap();
  const frames = [0, 1, 2].map((k) =>
    udpFrame({ src: '10.250.1.2', dst: '10.250.1.1', dstMac: 'ff:ff:ff:ff:ff:ff' }, { sport: 1000 + k, dport: 9, payload: 20 + k }),
  );
  // Frames at 512-byte slots of a SharedArrayBuffer, seen through a view with a byte offset.
  const buf = new Uint8Array(new SharedArrayBuffer(4096), 1024, 2048);
  const offs = new Int32Array(3);
  const lens = new Int32Array(3);
  frames.forEach((f, k) => {
    buf.set(f, k * 512);
    offs[k] = k * 512;
    lens[k] = f.length;
  });
  // A TAP that is down refuses frames with EIO.
  t.like(thrown(() => nat.writeBatch(tap.fd, buf, offs, lens, 3)) as object, { code: 'EIO', syscall: 'write' });
  ip('link', 'set', tap.name, 'up');
  const before = rxPackets(tap.name);
  t.is(nat.writeBatch(tap.fd, buf, offs, lens, 3), 3);
  t.is(rxPackets(tap.name), before + 3);
  t.is(nat.writeFrame(tap.fd, buf, offs[1], lens[1]), lens[1]);
  t.is(rxPackets(tap.name), before + 4);
  closeFd(tap.fd);
});

rootTest('readBatch reads the ARP request the kernel sends out of the TAP', async (t) => {
  const tap = openTap();
  ip('addr', 'add', '10.250.0.1/30', 'dev', tap.name);
  ip('link', 'set', tap.name, 'up');
  // A datagram to the peer address makes the kernel ask for its MAC.
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.send(Buffer.from('hello'), 9, '10.250.0.2', () => resolve()));
  sock.close();

  const SLOT = 2048;
  const buf = new Uint8Array(new SharedArrayBuffer(9 * SLOT), SLOT, 8 * SLOT); // view with an offset
  const lens = new Int32Array(8);
  const revents = new Int32Array(1);
  const deadline = Date.now() + 3000;
  let arp: Uint8Array | undefined;
  let frames = 0;
  while (!arp && Date.now() < deadline) {
    if (nat.poll(Int32Array.of(tap.fd), 1, POLLIN, revents, 200) === 0) continue;
    t.is(revents[0] & POLLIN, POLLIN);
    const n = nat.readBatch(tap.fd, buf, SLOT, 8, lens);
    t.true(n >= 1, 'POLLIN but nothing to read');
    frames += n;
    for (let k = 0; k < n; k++) {
      const f = buf.subarray(k * SLOT, k * SLOT + lens[k]);
      // Ethertype ARP, operation request, target protocol address 10.250.0.2.
      if (f[12] === 0x08 && f[13] === 0x06 && f[21] === 1 && f.subarray(38, 42).join('.') === '10.250.0.2') arp = f;
    }
  }
  t.truthy(arp, `no ARP request for 10.250.0.2 among ${frames} frames`);
  if (arp) {
    t.is(arp.length, 42);
    t.deepEqual([...arp.subarray(0, 6)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    t.is(arp.subarray(28, 32).join('.'), '10.250.0.1');
  }
  closeFd(tap.fd);
});

rootTest('a TAP deleted with ip link del: poll says POLLERR, read and write throw EBADFD', (t) => {
  const tap = openTap();
  ip('link', 'set', tap.name, 'up');
  ip('link', 'del', tap.name);
  t.false(linkExists(tap.name));
  const revents = new Int32Array(1);
  t.is(nat.poll(Int32Array.of(tap.fd), 1, POLLIN, revents, 0), 1);
  t.is(revents[0] & POLLERR, POLLERR);
  const buf = new Uint8Array(2 * 2048);
  const lens = new Int32Array(2);
  t.like(thrown(() => nat.readBatch(tap.fd, buf, 2048, 2, lens)) as object, { code: 'EBADFD', errno: 77, syscall: 'read' });
  t.like(thrown(() => nat.writeFrame(tap.fd, buf, 0, 60)) as object, { code: 'EBADFD', errno: 77, syscall: 'write' });
  closeFd(tap.fd);
});

test('eventfd: a signal wakes poll with POLLIN and drain returns the count', (t) => {
  const efd = nat.eventfdCreate();
  openFds.add(efd);
  const fds = Int32Array.of(efd);
  const revents = new Int32Array(1);
  t.is(nat.eventfdDrain(efd), 0);
  t.is(nat.poll(fds, 1, POLLIN, revents, 0), 0);
  nat.eventfdSignal(efd);
  nat.eventfdSignal(efd);
  t.is(nat.poll(fds, 1, POLLIN, revents, 1000), 1);
  t.is(revents[0], POLLIN);
  t.true(nat.eventfdDrain(efd) >= 1);
  t.is(nat.eventfdDrain(efd), 0);
  t.is(nat.poll(fds, 1, POLLIN, revents, 0), 0);
  closeFd(efd);
});

test('writeFrame, writeBatch, readBatch and poll check their arguments', (t) => {
  const efd = nat.eventfdCreate();
  openFds.add(efd);
  const buf = new Uint8Array(64);
  // A frame outside the buffer: nothing is written (the eventfd would have taken the 8 bytes).
  const e1 = thrown(() => nat.writeBatch(efd, buf, Int32Array.of(0, 60), Int32Array.of(8, 8), 2));
  t.true(e1 instanceof RangeError, String(e1));
  t.is(nat.eventfdDrain(efd), 0);
  t.true(thrown(() => nat.writeFrame(efd, buf, 60, 8)) instanceof RangeError);
  t.true(thrown(() => nat.readBatch(efd, buf, 32, 3, new Int32Array(3))) instanceof TypeError);
  t.true(thrown(() => nat.readBatch(efd, buf, 32, 2, new Int32Array(1))) instanceof TypeError);
  t.true(thrown(() => nat.readBatch(efd, new Int32Array(16) as unknown as Uint8Array, 32, 2, new Int32Array(2))) instanceof TypeError);
  t.true(thrown(() => nat.poll(Int32Array.of(efd), 2, POLLIN, new Int32Array(2), 0)) instanceof TypeError);
  closeFd(efd);
  // A closed fd: the syscall's error. Not efd's number again: ava's test files share this process, and
  // another one may have opened a file under that number since (closing it made a capture test fail).
  // No fd this high is ever open (the kernel's nr_open caps fds far below it).
  const never = 0x3fffffff;
  t.like(thrown(() => nat.readBatch(never, buf, 32, 2, new Int32Array(2))) as object, { code: 'EBADF', errno: 9, syscall: 'read' });
  t.like(thrown(() => nat.close(never)) as object, { code: 'EBADF', syscall: 'close' });
});

test('setAffinity pins the calling thread and getCpu reports that CPU', (t) => {
  // CPU 0 unless this process may not use it (a cpuset without 0): then the first one it may use.
  const allowed = /Cpus_allowed_list:\s*(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  const cpu = allowed ? Number(allowed[1]) : 0;
  nat.setAffinity(cpu);
  t.is(nat.getCpu(), cpu);
  t.like(thrown(() => nat.setAffinity(65535)) as object, { code: 'EINVAL', syscall: 'sched_setaffinity' });
});

interface NsReport {
  ifaces: string[];
  tap: { fd: number; name: string };
}

rootTest('setns from a worker thread moves only that thread into the namespace', async (t) => {
  ip('netns', 'add', netnsName);
  netnsMade = true;
  const code = `
    const { parentPort, workerData } = require('worker_threads');
    const nat = require(workerData.addon);
    nat.setns('/run/netns/' + workerData.netns, nat.constants.CLONE_NEWNET);
    const ifaces = Object.keys(require('os').networkInterfaces());
    const tap = nat.tapOpen(workerData.tap, nat.constants.IFF_TAP | nat.constants.IFF_NO_PI);
    parentPort.postMessage({ ifaces, tap });
  `;
  const tapWanted = tapName();
  const worker = new Worker(code, { eval: true, workerData: { addon: nativeAddonPath(), netns: netnsName, tap: tapWanted } });
  try {
    const report = await new Promise<NsReport>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (c) => reject(new Error(`worker exited with ${c} before reporting`)));
    });
    openFds.add(report.tap.fd);
    // The new namespace has only lo, and it is down: no addresses at all. This thread still sees lo.
    t.deepEqual(report.ifaces.filter((n) => n !== 'lo'), []);
    t.true(Object.keys(os.networkInterfaces()).includes('lo'));
    // The TAP the worker created lives in the namespace, not here; fds are process-wide.
    t.is(report.tap.name, tapWanted);
    t.true(linkExists(tapWanted, netnsName));
    t.false(linkExists(tapWanted));
    closeFd(report.tap.fd);
    t.false(linkExists(tapWanted, netnsName));
  } finally {
    await worker.terminate();
  }
  ip('netns', 'del', netnsName);
  netnsMade = false;
});
