import test from 'ava';
import * as fs from 'fs';
import { CaptureReader, captureValidate, pcapBuild } from '../../src/io/pcap';
import { userErrorOf as userError } from '../helpers/user-error';
import { udpFrame } from '../../src/io/frame-build';
import { pcapngBuild, tmpFile } from '../helpers/capture';

const frames = [0, 1, 2].map((k) => ({ tsMs: 1_450_000_000_000 + k * 1.5, data: udpFrame({ src: '10.0.0.1', dst: '10.0.0.2' }, { sport: k + 1, dport: 9, payload: k * 100 }) }));

function readAll(file: string): { ts: number; len: number; first: number }[] {
  const r = new CaptureReader(file);
  const out: { ts: number; len: number; first: number }[] = [];
  while (r.next()) out.push({ ts: r.tsMs, len: r.caplen, first: r.buf[r.off + 35] });
  r.close();
  return out;
}

test('libpcap and pcapng captures read the same records', (t) => {
  const a = readAll(tmpFile('a.pcap', pcapBuild(frames)));
  const b = readAll(tmpFile('b.pcapng', pcapngBuild(frames)));
  t.is(a.length, 3);
  t.deepEqual(a.map((x) => x.len), frames.map((f) => f.data.length));
  t.deepEqual(a, b);
  t.is(a[1].ts - a[0].ts, 1.5);
});

test('big-endian and nanosecond libpcap files', (t) => {
  const le = pcapBuild(frames);
  const be = Buffer.from(le);
  be.writeUInt32BE(0xa1b2c3d4, 0);
  be.writeUInt16BE(2, 4);
  be.writeUInt16BE(4, 6);
  be.writeUInt32BE(65535, 16);
  be.writeUInt32BE(1, 20);
  let o = 24;
  for (const f of frames) {
    for (let k = 0; k < 4; k++) be.writeUInt32BE(le.readUInt32LE(o + k * 4), o + k * 4);
    o += 16 + f.data.length;
  }
  t.deepEqual(readAll(tmpFile('be.pcap', be)), readAll(tmpFile('le.pcap', le)));
  // The same file read as nanosecond timestamps: record 2's sub-second field (1500) is 0.0015 ms, not 1.5.
  const ns = Buffer.from(le);
  ns.writeUInt32LE(0xa1b23c4d, 0);
  const r = new CaptureReader(tmpFile('ns.pcap', ns));
  r.next();
  const t0 = r.tsMs;
  r.next();
  const dt = r.tsMs - t0; // ms; doubles near 1.45e12 ms resolve ~0.0002 ms
  t.true(Math.abs(dt - 0.0015) < 0.0003, `${dt}`);
  r.close();
});

test('bad captures are user errors naming the file and the problem', (t) => {
  const good = pcapBuild(frames);
  t.regex(userError(() => captureValidate(tmpFile('t.pcap', good.subarray(0, good.length - 10)))), /t\.pcap: frame 3 at byte 240: truncated: the record needs 242 bytes, 232 present$/);
  t.regex(userError(() => captureValidate(tmpFile('h.pcap', good.subarray(0, 30)))), /h\.pcap: frame 1 at byte 24: truncated: the record header is cut short \(6 of 16 bytes\)$/);
  t.regex(userError(() => captureValidate(tmpFile('x.txt', 'hello, this is not a capture'))), /x\.txt: is not a pcap or pcapng capture/);
  t.regex(userError(() => captureValidate(tmpFile('e.pcap', ''))), /is not a capture file/);
  const sll = Buffer.from(good);
  sll.writeUInt32LE(113, 20);
  t.regex(userError(() => captureValidate(tmpFile('any.pcap', sll))), /link type 113 \(Linux cooked \(tcpdump -i any\)\) is not supported; replay needs Ethernet frames/);
  const huge = Buffer.from(good);
  huge.writeUInt32LE(10_000_000, 24 + 8);
  t.regex(userError(() => captureValidate(tmpFile('c.pcap', huge))), /c\.pcap: frame 1 at byte 24: corrupt: the record claims 10000000 bytes \(no capture holds more than 262144\)$/);
  t.regex(userError(() => captureValidate('/no/such/file.pcap')), /no such capture file/);
  t.regex(userError(() => captureValidate('/tmp')), /\/tmp: is a directory; give a capture file/);
  const orig = Buffer.from(good);
  orig.writeUInt32LE(0xfffffff0, 24 + 12);
  t.regex(userError(() => captureValidate(tmpFile('o.pcap', orig))), /frame 1 at byte 24: corrupt: the record claims an original length of 4294967280 bytes$/);
  const ng = pcapngBuild(frames);
  t.regex(userError(() => captureValidate(tmpFile('t.pcapng', ng.subarray(0, ng.length - 8)))), /t\.pcapng: frame 3 at byte \d+: truncated: a block of \d+ bytes is cut short \(\d+ present\)$/);
});

test('a capture larger than the read buffer streams', (t) => {
  const many = Array.from({ length: 3000 }, (_, k) => ({ tsMs: k, data: udpFrame({ src: '10.0.0.1', dst: '10.0.0.2' }, { sport: 1, dport: 2, payload: 1400 }) }));
  const f = tmpFile('big.pcap', pcapBuild(many));
  t.true(fs.statSync(f).size > 2 << 20);
  t.is(captureValidate(f), 3000);
});
