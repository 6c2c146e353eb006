/**
 * A synchronous, bounded-memory pull over a gzip-compressed file, for the capture reader (pcap.ts), whose
 * `next()` is synchronous because the replay's loop is.
 *
 * Node's zlib has no synchronous streaming inflate: `gunzipSync` takes the whole input, and the internal
 * per-chunk call behind it closes the stream after one chunk. So a worker thread runs the streaming
 * gunzip (fs.createReadStream → zlib.createGunzip, which also reads concatenated gzip members) and
 * copies what it inflates into a ring in a SharedArrayBuffer; the reader copies out of the ring and
 * sleeps in `Atomics.wait` while it is empty, the worker while it is full. Memory is the ring plus the
 * worker's zlib, whatever the file's size, and the inflating runs on another core than the replay.
 * (Posting each chunk as a message instead left ~100 MB more resident: every chunk became garbage on
 * both sides until the external-memory GC threshold.)
 *
 * Control words (Int32 over a SharedArrayBuffer): [W] bytes written, [R] bytes read (both wrap at 2^32;
 * their difference is the fill), [CLOSED] set by the reader when it closes, [STATE] 1 at the end of the
 * stream, 2 after an error (its message is on the port), [KIB] KiB of the compressed file read (progress),
 * [SEQ] bumped by the worker after each write and at the end (what the reader sleeps on).
 * @module
 */
import { MessageChannel, MessagePort, Worker, receiveMessageOnPort } from 'worker_threads';

const RING = 1 << 22; // a power of two: index = counter & (RING - 1)
const CHUNK = 1 << 18;
const W = 0;
const R = 1;
const CLOSED = 2;
const STATE = 3;
const KIB = 4;
const SEQ = 5;
/** Nothing new for this long means the worker is gone (it reports everything it can see). */
const STALL_MS = 60000;

// Plain JavaScript, run with eval: the bundle has no separate file for it.
const WORKER_SRC = `
const { workerData } = require('worker_threads');
const fs = require('fs');
const zlib = require('zlib');
const { file, port, ctl, ring, chunk } = workerData;
const [W, R, CLOSED, STATE, KIB, SEQ] = [0, 1, 2, 3, 4, 5];
// SEQ counts the worker's news (data, the end, an error): the reader sleeps on it, so no wake-up is lost.
const news = () => {
  Atomics.add(ctl, SEQ, 1);
  Atomics.notify(ctl, SEQ);
};
const size = ring.length;
const mask = size - 1;
let src;
let gz;
const finish = (state, msg) => {
  if (Atomics.load(ctl, STATE) !== 0) return;
  if (msg) port.postMessage(msg);
  Atomics.store(ctl, STATE, state);
  news();
};
const fail = (e) => finish(2, { error: String((e && e.message) || e), code: String((e && e.code) || '') });
try {
  src = fs.createReadStream(file, { highWaterMark: chunk });
  gz = zlib.createGunzip({ chunkSize: chunk });
  src.on('data', () => Atomics.store(ctl, KIB, Math.floor(src.bytesRead / 1024)));
  src.on('end', () => Atomics.store(ctl, KIB, Math.ceil(src.bytesRead / 1024)));
  gz.on('data', (c) => {
    // Blocking here while the ring is full pauses zlib too: that is the back-pressure.
    let o = 0;
    while (o < c.length) {
      if (Atomics.load(ctl, CLOSED) !== 0) {
        src.destroy();
        gz.destroy();
        return;
      }
      const w = Atomics.load(ctl, W);
      const r = Atomics.load(ctl, R);
      const free = size - ((w - r) >>> 0);
      if (free === 0) {
        Atomics.wait(ctl, R, r, 1000);
        continue;
      }
      const i = w & mask;
      const n = Math.min(free, c.length - o, size - i);
      ring.set(c.subarray(o, o + n), i);
      o += n;
      Atomics.add(ctl, W, n);
      news();
    }
  });
  gz.on('end', () => finish(1));
  gz.on('error', fail);
  src.on('error', fail);
  src.pipe(gz);
} catch (e) {
  fail(e);
}
`;

/** Thrown by `read` when the stream cannot go on; `code` is zlib's (Z_BUF_ERROR: it ends early) or fs's. */
export class GunzipError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'GunzipError';
  }
}

/** The inflated bytes of a gzip file, read in order. */
export class GunzipPull {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(32));
  private readonly ring = new Uint8Array(new SharedArrayBuffer(RING));
  private readonly port: MessagePort;
  private readonly worker: Worker;
  private error: GunzipError | undefined;

  constructor(file: string) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(WORKER_SRC, {
      eval: true,
      workerData: { file, port: port2, ctl: this.ctl, ring: this.ring, chunk: CHUNK },
      transferList: [port2],
    });
    // A reader nobody closes must not keep the process alive.
    this.worker.unref();
  }

  /**
   * Copy up to `len` inflated bytes into `buf` at `off`, waiting for the worker when none is ready.
   * @returns the bytes copied; 0 at the end of the stream.
   * @throws GunzipError when the data is damaged or cut short, or the file cannot be read.
   */
  read(buf: Uint8Array, off: number, len: number): number {
    const ctl = this.ctl;
    for (;;) {
      if (this.error) throw this.error;
      const seq = Atomics.load(ctl, SEQ);
      const w = Atomics.load(ctl, W);
      const r = Atomics.load(ctl, R);
      const avail = (w - r) >>> 0;
      if (avail > 0) {
        const i = r & (RING - 1);
        const n = Math.min(avail, len, RING - i);
        buf.set(this.ring.subarray(i, i + n), off);
        Atomics.add(ctl, R, n);
        Atomics.notify(ctl, R);
        return n;
      }
      // The worker sets STATE after its last write, so an empty ring with STATE set is the whole story.
      const state = Atomics.load(ctl, STATE);
      if (state !== 0 && Atomics.load(ctl, W) === w) {
        if (state === 1) return 0;
        const m = receiveMessageOnPort(this.port)?.message as { error: string; code: string } | undefined;
        this.error = new GunzipError(m?.error ?? 'the decompressing thread failed', m?.code ?? '');
        continue;
      }
      if (state === 0 && Atomics.wait(ctl, SEQ, seq, STALL_MS) === 'timed-out' && Atomics.load(ctl, SEQ) === seq) {
        this.error = new GunzipError(`the decompressing thread gave nothing for ${STALL_MS / 1000} s`, 'ETIMEDOUT');
      }
    }
  }

  /** Compressed bytes read so far (the worker reads up to a ring ahead of what was taken). */
  consumed(): number {
    return Atomics.load(this.ctl, KIB) * 1024;
  }

  close(): void {
    Atomics.store(this.ctl, CLOSED, 1);
    Atomics.notify(this.ctl, R);
    this.port.close();
    void this.worker.terminate();
  }
}
