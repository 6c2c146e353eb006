/**
 * Hostile captures: truncations and byte mutations at every offset of small valid pcap and pcapng files
 * (both byte orders, several sections and interfaces, SHB/IDB/EPB/SPB/NRB/ISB/custom blocks), and
 * seeded random multi-byte mutations. Each one goes through the reader and the whole replay (datapath
 * and agent, on the capture's clock) and must end within a second, with a result or one UserError line.
 * The regression for the hang (a capture whose clock jumps thousands of years) runs the built command.
 */
import test from 'ava';
import * as fs from 'fs';
import fc from 'fast-check';
import { CaptureReader, captureValidate, pcapBuild } from '../../src/io/pcap';
import { isUserError } from '../../src/errors';
import { replayCapture } from '../../src/cli/replay-run';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';
import { udpFrame, tcpFrame } from '../../src/io/frame-build';
import { cli, pcapngSection, tmpFile } from '../helpers/capture';

const params = { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 1024, vr_oflow_entries: 64 };
const T0 = 1_450_000_000_000;
const frames = [0, 1, 2, 3, 4].map((k) => ({
  tsMs: T0 + k * 7,
  data: k % 2 === 0
    ? udpFrame({ src: '10.0.0.1', dst: '10.0.0.2' }, { sport: 1000 + k, dport: 53, payload: 8 + k })
    : tcpFrame({ src: '10.0.0.2', dst: '10.0.0.1' }, { sport: 80, dport: 1000 + k, flags: 'SA' }),
}));

function pcapBe(nano: boolean): Buffer {
  const le = pcapBuild(frames);
  const be = Buffer.from(le);
  be.writeUInt32BE(nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  be.writeUInt16BE(2, 4);
  be.writeUInt16BE(4, 6);
  be.writeUInt32BE(65535, 16);
  be.writeUInt32BE(1, 20);
  for (let o = 24, k = 0; k < frames.length; k++) {
    for (let w = 0; w < 4; w++) be.writeUInt32BE(le.readUInt32LE(o + w * 4), o + w * 4);
    o += 16 + frames[k].data.length;
  }
  return be;
}

const samples: [string, Buffer][] = [
  ['pcap-le', pcapBuild(frames)],
  ['pcap-be-ns', pcapBe(true)],
  ['pcapng-be-le', Buffer.concat([pcapngSection(frames, false), pcapngSection(frames.slice(0, 3), true)])],
  ['pcapng-le', pcapngSection(frames, true)],
];

const file = tmpFile('fuzz.cap', '');

type Outcome = { ok: true; frames: number } | { ok: false; line: string };

/** Read and replay `data`; throws on anything but a result or a one-line UserError, or a slow run. */
function run(data: Uint8Array, what: string): Outcome {
  fs.writeFileSync(file, data);
  const t0 = process.hrtime.bigint();
  let out: Outcome;
  try {
    const n = captureValidate(file);
    const r = replayCapture(file, { params });
    if (r.frames !== n) throw new Error(`${what}: validate counted ${n} frames, replay ${r.frames}`);
    out = { ok: true, frames: n };
  } catch (e) {
    if (!isUserError(e)) throw new Error(`${what}: not a user error: ${(e as Error).stack}`);
    const line = e.message;
    if (line.includes('\n') || line.length > 300 || !line.startsWith(file)) throw new Error(`${what}: not one line naming the file: ${JSON.stringify(line)}`);
    out = { ok: false, line };
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (ms > 1000) throw new Error(`${what}: took ${ms.toFixed(0)} ms`);
  return out;
}

for (const [name, good] of samples) {
  test(`${name}: the intact file replays every frame`, (t) => {
    const r = run(good, name);
    t.deepEqual(r, { ok: true, frames: name === 'pcapng-be-le' ? frames.length + 3 : frames.length });
  });

  test(`${name}: a truncation at every offset ends with the frames before it or one line`, (t) => {
    let errors = 0;
    for (let k = 0; k < good.length; k++) {
      const r = run(good.subarray(0, k), `${name} cut at ${k}`);
      if (!r.ok) errors++;
    }
    // Only cuts exactly at record boundaries are clean ends; all others name the truncation.
    t.true(errors > good.length * 0.9, `${errors} of ${good.length} cuts refused`);
  });

  test(`${name}: every byte offset mutated (seeded values) ends within a second`, (t) => {
    const rnd = fc.sample(fc.integer({ min: 0, max: 255 }), { seed: 22, numRuns: good.length });
    let n = 0;
    for (let k = 0; k < good.length; k++) {
      for (const v of [rnd[k], good[k] ^ 0xff, 0]) {
        const m = Buffer.from(good);
        m[k] = v;
        run(m, `${name} byte ${k} = ${v}`);
        n++;
      }
    }
    t.is(n, good.length * 3);
  });

  test(`${name}: random multi-byte mutations, insertions and deletions end within a second`, (t) => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(good.length), fc.integer({ min: 0, max: 2 }), fc.uint8Array({ minLength: 1, maxLength: 8 })), { minLength: 1, maxLength: 6 }),
        (edits) => {
          let m = Buffer.from(good);
          for (const [at, kind, bytes] of edits) {
            const o = Math.min(at, m.length);
            if (kind === 0) Buffer.from(bytes).copy(m, o);
            else if (kind === 1) m = Buffer.concat([m.subarray(0, o), bytes, m.subarray(o)]);
            else m = Buffer.concat([m.subarray(0, o), m.subarray(Math.min(m.length, o + bytes.length))]);
          }
          run(m, `${name} edits ${JSON.stringify(edits.map(([a, k, b]) => [a, k, Buffer.from(b).toString('hex')]))}`);
        },
      ),
      { seed: 1222, numRuns: 400 },
    );
    t.pass(); // fc.assert throws on the first failing edit list, with it shrunk
  });
}

test('the classes of bad blocks each get their own line', (t) => {
  const ng = pcapngSection(frames, true);
  const shbLen = ng.readUInt32LE(4);
  const idbAt = shbLen;
  const line = (m: Buffer): string => {
    const r = run(m, 'class');
    return r.ok ? 'ok' : r.line.slice(file.length + 2);
  };
  const zero = Buffer.from(ng);
  zero.writeUInt32LE(0, idbAt + 4);
  t.regex(line(zero), /frame 1 at byte 44: corrupt: a block claims 0 bytes \(a block is at least 12 bytes, a multiple of 4\)/);
  const shortIdb = Buffer.concat([ng.subarray(0, idbAt), Buffer.from([1, 0, 0, 0, 12, 0, 0, 0, 12, 0, 0, 0])]);
  t.regex(line(shortIdb), /a block of type 1 has 12 bytes, fewer than its 20-byte minimum/);
  const trailer = Buffer.from(ng);
  trailer.writeUInt32LE(ng.readUInt32LE(idbAt + 4) + 4, idbAt + ng.readUInt32LE(idbAt + 4) - 4);
  t.regex(line(trailer), /trailing length \d+ differs from its leading length/);
  const past = Buffer.from(ng);
  past.writeUInt32LE(0x7fff0000, idbAt + 4);
  t.regex(line(past), /frame 1 at byte 44: corrupt: a block claims 2147418112 bytes/);
  const opt = Buffer.from(ng);
  opt.writeUInt16LE(200, idbAt + 16 + 2); // the first option's length runs past the block
  t.regex(line(opt), /option 2 of an interface block runs past the block \(200 bytes\)/);
  const bom = Buffer.from(ng);
  bom.writeUInt32LE(0x12345678, 8);
  t.regex(line(bom), /bad byte-order magic/);
  t.regex(line(Buffer.concat([ng.subarray(shbLen)])), /is not a pcap or pcapng capture|a block before any section header/);
  const res = Buffer.from(ng);
  res[ng.indexOf(Buffer.from([9, 0, 1, 0]), idbAt) + 4] = 0x7f;
  t.regex(line(res), /timestamp resolution \(if_tsresol 127\) is finer than any clock/);
});

test('an SPB without a timestamp keeps the previous packet\'s time; sections of either byte order read alike', (t) => {
  const f = tmpFile('two.pcapng', Buffer.concat([pcapngSection(frames, false), pcapngSection(frames, true)]));
  const r = new CaptureReader(f);
  const ts: number[] = [];
  while (r.next()) ts.push(Math.round(r.tsMs - T0));
  r.close();
  // EPBs on the µs interface, on the 2^-9 s one (rounded to 1/512 s), and the SPB at the previous time.
  const one = [0, 7, 14, 21, 21];
  t.deepEqual(ts.map((x, k) => Math.abs(x - [...one, ...one][k]) <= 2), new Array(10).fill(true), ts.join(','));
});

test('regression: a big-endian pcapng whose clock jumps thousands of years replays at once (it hung)', (t) => {
  const far = [...frames.slice(0, 2), { tsMs: T0 + 1e14, data: frames[2].data }, { tsMs: T0 + 2e14, data: frames[3].data }, frames[4]];
  const f = tmpFile('jump.pcapng', Buffer.concat([pcapngSection(far, false), pcapngSection(frames, true)]));
  const t0 = Date.now();
  const r = cli(['replay', f, '--params', 'module-params/small.conf']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^Replay of .*jump\.pcapng: 10 frames over/);
  t.true(Date.now() - t0 < 20000, 'the command ends');
});
