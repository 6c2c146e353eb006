/**
 * The capture decoded once into shared memory (plan): packed into chunks, read back frame by frame as
 * the file reader reads it (the first HEAD_BYTES bytes, the wire length, the timestamp), across chunk
 * boundaries set by the frame count and by the bytes; a capture that does not fit is one line.
 */
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import fc from 'fast-check';
import { CaptureReader, pcapBuild } from '../../src/io/pcap';
import { HEAD_BYTES, SharedFrameReader, decodeShared } from '../../src/capacity/frames';
import { UserError } from '../../src/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vre-frames-'));
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

function writeCapture(sizes: number[], name: string): string {
  const frames = sizes.map((n, i) => ({ tsMs: 1.7e12 + i * 0.5, data: Uint8Array.from({ length: n }, (_, k) => (i * 7 + k) & 255) }));
  const file = path.join(dir, name);
  fs.writeFileSync(file, pcapBuild(frames));
  return file;
}

test('shared frames read back as the file: head bytes, wire length, timestamp, across chunk boundaries', (t) => {
  let run = 0;
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 14, max: 400 }), { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 600 }), (sizes, chunkFrames, extra) => {
      const file = writeCapture(sizes, `p${run++}.pcap`);
      const shared = decodeShared(file, { chunkFrames, chunkBytes: HEAD_BYTES + extra });
      if (shared.count !== sizes.length) return false;
      const want = new CaptureReader(file);
      const got = new SharedFrameReader(shared);
      let n = 0;
      while (want.next()) {
        if (!got.next()) return false;
        n++;
        const kept = Math.min(want.caplen, HEAD_BYTES);
        if (got.caplen !== kept || got.origlen !== want.origlen || got.tsMs !== want.tsMs || got.position !== n) return false;
        const a = want.buf.subarray(want.off, want.off + kept);
        const b = got.buf.subarray(got.off, got.off + kept);
        if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) return false;
      }
      want.close();
      return !got.next() && shared.chunks.length >= Math.ceil(sizes.length / chunkFrames);
    }),
    { numRuns: 60 },
  );
  t.pass();
});

test('a 64-byte frame takes 64 bytes + 16, not HEAD_BYTES', (t) => {
  const file = writeCapture(new Array(1000).fill(64), 'small.pcap');
  t.is(decodeShared(file).bytes, 1000 * (64 + 16));
});

test('a capture whose decoded frames do not fit is one line naming the file and the cut', (t) => {
  const file = writeCapture(new Array(50).fill(100), 'big.pcap');
  const e = t.throws(() => decodeShared(file, { maxBytes: 2000, chunkFrames: 4, chunkBytes: 400 }));
  t.true(e instanceof UserError);
  t.regex(e?.message ?? '', /big\.pcap: its frames need more than [\d.]+ MiB decoded \(\d+ frames read\).*editcap -r/);
});
