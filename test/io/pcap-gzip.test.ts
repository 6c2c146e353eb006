/**
 * The capture reader's gzip input (both formats, concatenated members, files larger than the inflate
 * ring), pcapng with several interfaces (per-interface if_tsresol and if_tsoffset; a non-Ethernet
 * interface skipped and counted), and where it stops: errors naming the frame and the byte offset, and
 * the keepGoing reader that stops at a corrupt block and says where.
 */
import test from 'ava';
import * as zlib from 'zlib';
import { CaptureReader, captureValidate, pcapBuild } from '../../src/io/pcap';
import { udpFrame } from '../../src/io/frame-build';
import { userErrorOf } from '../helpers/user-error';
import { Frame, pcapngBlock, pcapngOptions, pcapngSection, tmpFile } from '../helpers/capture';

const T0 = 1_450_000_000_000;
const frames: Frame[] = [0, 1, 2, 3, 4, 5].map((k) => ({
  tsMs: T0 + k * 10,
  data: udpFrame({ src: '10.0.0.1', dst: '10.0.0.2' }, { sport: 1000 + k, dport: 53, payload: 10 + k }),
}));

type Rec = { ts: number; len: number; sport: number };

function readAll(file: string): Rec[] {
  const r = new CaptureReader(file);
  const out: Rec[] = [];
  while (r.next()) out.push({ ts: r.tsMs, len: r.caplen, sport: r.buf.readUInt16BE(r.off + 34) });
  r.close();
  return out;
}

test('gzip-compressed pcap and pcapng read as their uncompressed files; concatenated members too', (t) => {
  for (const [name, raw] of [['c.pcap', pcapBuild(frames)], ['c.pcapng', pcapngSection(frames)]] as const) {
    const plain = readAll(tmpFile(name, raw));
    t.is(plain.length, frames.length);
    t.deepEqual(readAll(tmpFile(`${name}.gz`, zlib.gzipSync(raw))), plain, name);
    const half = Math.floor(raw.length / 2);
    const members = Buffer.concat([zlib.gzipSync(raw.subarray(0, half)), zlib.gzipSync(raw.subarray(half))]);
    t.deepEqual(readAll(tmpFile(`${name}.2.gz`, members)), plain, `${name} in two gzip members`);
  }
  const r = new CaptureReader(tmpFile('x.gz', zlib.gzipSync(pcapBuild(frames))));
  t.true(r.gzip);
  t.is(r.format, 'pcap');
  r.close();
});

test('a gzip capture larger than the inflate ring streams, and its progress reaches the file size', (t) => {
  const many = Array.from({ length: 6000 }, (_, k) => ({ tsMs: T0 + k, data: udpFrame({ src: '10.0.0.1', dst: '10.0.0.2' }, { sport: k & 0xffff, dport: 2, payload: new Uint8Array(1400).map((_, i) => (i * k) & 0xff) }) }));
  const raw = pcapBuild(many);
  t.true(raw.length > 8 << 20);
  const f = tmpFile('big.pcap.gz', zlib.gzipSync(raw, { level: 1 }));
  const r = new CaptureReader(f);
  let n = 0;
  let ok = true;
  while (r.next()) {
    ok &&= r.buf.readUInt16BE(r.off + 34) === (n & 0xffff);
    n++;
  }
  t.is(n, 6000);
  t.true(ok, 'every frame in order');
  t.is(r.position, r.size);
  r.close();
});

/** A section of three interfaces: Ethernet in ns (with if_tsoffset 100 s), cooked Linux (113), Ethernet in ms. */
function threeInterfaces(): { file: Buffer; epbAt: number[] } {
  const u16 = (v: number): Buffer => Buffer.from([v & 0xff, v >> 8]);
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  const shb = pcapngBlock(0x0a0d0d0a, Buffer.concat([u32(0x1a2b3c4d), u16(1), u16(0), Buffer.alloc(8, 0xff)]));
  const off = Buffer.alloc(8);
  off.writeBigInt64LE(100n);
  const idb = (lt: number, opts: [number, Uint8Array][]): Buffer => pcapngBlock(1, Buffer.concat([u16(lt), u16(0), u32(65535), pcapngOptions(opts)]));
  const epb = (ifId: number, ticks: bigint, f: Uint8Array): Buffer => {
    const ts = Buffer.alloc(8);
    ts.writeUInt32LE(Number(ticks >> 32n), 0);
    ts.writeUInt32LE(Number(ticks & 0xffffffffn), 4);
    return pcapngBlock(6, Buffer.concat([u32(ifId), ts, u32(f.length), u32(f.length), Buffer.from(f), Buffer.alloc((4 - (f.length % 4)) % 4)]));
  };
  const blocks = [shb, idb(1, [[9, Buffer.from([9])], [14, off]]), idb(113, []), idb(1, [[9, Buffer.from([3])]])];
  const ns = (ms: number): bigint => BigInt(Math.round(ms)) * 1_000_000n;
  const packets = [
    epb(0, ns(T0 - 100_000), frames[0].data), // + 100 s of if_tsoffset = T0
    epb(1, ns(T0 + 5) / 1000n, frames[1].data), // cooked: skipped
    epb(2, BigInt(T0 + 20), frames[2].data),
    epb(0, ns(T0 + 30 - 100_000) + 500_000n, frames[3].data), // T0 + 30.5 ms
    epb(1, 0n, frames[4].data), // skipped
    epb(2, BigInt(T0 + 50), frames[5].data),
  ];
  const epbAt: number[] = [];
  let at = blocks.reduce((s, b) => s + b.length, 0);
  for (const p of packets) {
    epbAt.push(at);
    at += p.length;
  }
  return { file: Buffer.concat([...blocks, ...packets]), epbAt };
}

test('pcapng with interfaces of different if_tsresol and an if_tsoffset; a non-Ethernet interface is skipped and counted', (t) => {
  const { file } = threeInterfaces();
  for (const f of [tmpFile('three.pcapng', file), tmpFile('three.pcapng.gz', zlib.gzipSync(file))]) {
    const r = new CaptureReader(f);
    const got: [number, number][] = [];
    while (r.next()) got.push([r.buf.readUInt16BE(r.off + 34), r.tsMs - T0]);
    t.deepEqual(got, [[1000, 0], [1002, 20], [1003, 30.5], [1005, 50]]);
    t.is(r.count, 4);
    t.is(r.skipped, 2);
    t.deepEqual(r.skippedLinkTypes, [113]);
    r.close();
  }
  t.is(captureValidate(tmpFile('v.pcapng', file)), 4);
});

test('a pcapng capture with no Ethernet interface at all is one line naming its link type', (t) => {
  const ng = pcapngSection(frames.slice(0, 3));
  const cooked = Buffer.from(ng);
  // Both interface blocks of the section become Linux cooked captures.
  for (let o = ng.readUInt32LE(4); o < ng.length; o += ng.readUInt32LE(o + 4)) if (ng.readUInt32LE(o) === 1) cooked.writeUInt16LE(113, o + 8);
  t.regex(userErrorOf(() => captureValidate(tmpFile('any.pcapng', cooked))), /any\.pcapng: has no Ethernet interface: its 3 frames are of link type 113 \(Linux cooked \(tcpdump -i any\)\); replay needs Ethernet frames/);
});

test('a corrupt block mid-file: the error names the frame and the byte offset; keepGoing stops there and says so', (t) => {
  const { file, epbAt } = threeInterfaces();
  const bad = Buffer.from(file);
  bad.writeUInt32LE(0x7fff0000, epbAt[3] + 4); // the fourth packet block (frame 4) claims 2 GB
  const f = tmpFile('bad.pcapng', bad);
  const line = `${f}: frame 4 at byte ${epbAt[3]}: corrupt: a block claims 2147418112 bytes`;
  t.is(userErrorOf(() => captureValidate(f)), line);

  const r = new CaptureReader(f, { keepGoing: true });
  const sports: number[] = [];
  while (r.next()) sports.push(r.buf.readUInt16BE(r.off + 34));
  t.deepEqual(sports, [1000, 1002], 'the frames before the bad block (frame 2 was skipped)');
  t.deepEqual(r.problem, { frame: 4, offset: epbAt[3], message: 'corrupt: a block claims 2147418112 bytes', line });
  t.false(r.next(), 'stays stopped');
  r.close();

  // A clean file leaves no problem.
  const ok = new CaptureReader(tmpFile('ok.pcapng', file), { keepGoing: true });
  while (ok.next());
  t.is(ok.problem, undefined);
  t.is(ok.count, 4);
  ok.close();
});

test('a truncated pcap and a corrupt pcap record, with and without keepGoing', (t) => {
  const raw = pcapBuild(frames);
  const at = (k: number): number => 24 + frames.slice(0, k).reduce((s, f) => s + 16 + f.data.length, 0);
  const cut = tmpFile('cut.pcap', raw.subarray(0, at(4) + 20));
  t.is(userErrorOf(() => captureValidate(cut)), `${cut}: frame 5 at byte ${at(4)}: truncated: the record needs ${frames[4].data.length} bytes, 4 present`);
  const r = new CaptureReader(cut, { keepGoing: true });
  let n = 0;
  while (r.next()) n++;
  t.is(n, 4);
  t.like(r.problem, { frame: 5, offset: at(4) });
  r.close();

  const huge = Buffer.from(raw);
  huge.writeUInt32LE(1 << 30, at(2) + 8);
  const hr = new CaptureReader(tmpFile('huge.pcap', huge), { keepGoing: true });
  while (hr.next());
  t.is(hr.count, 2);
  t.is(hr.problem?.message, 'corrupt: the record claims 1073741824 bytes (no capture holds more than 262144)');
});

test('a truncated gzip: one line naming the frame, or with keepGoing the frames before the cut', (t) => {
  const many = Array.from({ length: 4000 }, (_, k) => ({ tsMs: T0 + k, data: udpFrame({ src: '10.0.0.1', dst: '10.0.0.2' }, { sport: k, dport: 2, payload: new Uint8Array(200).map((_, i) => (i ^ k) & 0xff) }) }));
  const gz = zlib.gzipSync(pcapBuild(many));
  const f = tmpFile('cut.pcap.gz', gz.subarray(0, Math.floor(gz.length * 0.6)));
  t.regex(userErrorOf(() => captureValidate(f)), /cut\.pcap\.gz: frame (\d+) at byte (\d+): truncated: the gzip stream ends early \(zlib: unexpected end of file\)$/);
  const r = new CaptureReader(f, { keepGoing: true });
  let n = 0;
  let inOrder = true;
  while (r.next()) inOrder &&= r.buf.readUInt16BE(r.off + 34) === n++;
  t.true(n > 1000 && n < 4000, `${n} frames before the cut`);
  t.true(inOrder);
  t.is(r.problem?.frame, n + 1);
  t.is(r.problem?.offset, 24 + n * (16 + 242), 'the offset of the record cut short');
  r.close();

  // Cut at a record boundary of the inflated stream: still truncated (the gzip trailer is missing).
  const whole = tmpFile('trailer.pcap.gz', gz.subarray(0, gz.length - 4));
  t.regex(userErrorOf(() => captureValidate(whole)), /truncated: the gzip stream ends early/);
  // Damaged compressed data, and a gzip that holds something else.
  const dmg = Buffer.from(gz);
  dmg[10] ^= 0xff;
  t.regex(userErrorOf(() => captureValidate(tmpFile('dmg.gz', dmg))), /dmg\.gz: is corrupt before its capture header: the gzip data is damaged \(zlib: .+\)|dmg\.gz: frame \d+ at byte \d+: corrupt/);
  t.regex(userErrorOf(() => captureValidate(tmpFile('t.gz', zlib.gzipSync('just some text')))), /t\.gz: is not a pcap or pcapng capture inside its gzip compression \(unknown magic number\)/);
  t.regex(userErrorOf(() => captureValidate(tmpFile('e.gz', gz.subarray(0, 2)))), /e\.gz: is truncated before its capture header: the gzip stream ends early/);
});
