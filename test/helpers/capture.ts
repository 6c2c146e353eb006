/** Captures for tests: temp files in libpcap or pcapng form, and running the built CLI. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { pcapBuild } from '../../src/io/pcap';

export type Frame = { tsMs: number; data: Uint8Array };

const tmpDirs: string[] = [];
process.on('exit', () => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A file in a temporary directory that is removed when the test process ends. */
export function tmpFile(name: string, data: Uint8Array | string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-'));
  tmpDirs.push(dir);
  const f = path.join(dir, name);
  fs.writeFileSync(f, data);
  return f;
}

export function writePcap(frames: Frame[], snaplen?: number): string {
  return tmpFile('c.pcap', pcapBuild(frames, snaplen));
}

/** pcapng: SHB, one Ethernet IDB with µs resolution, then EPBs. */
export function pcapngBuild(frames: Frame[]): Buffer {
  const blocks: Buffer[] = [];
  const shb = Buffer.alloc(28);
  shb.writeUInt32LE(0x0a0d0d0a, 0);
  shb.writeUInt32LE(28, 4);
  shb.writeUInt32LE(0x1a2b3c4d, 8);
  shb.writeUInt16LE(1, 12);
  shb.writeInt32LE(-1, 16);
  shb.writeInt32LE(-1, 20);
  shb.writeUInt32LE(28, 24);
  blocks.push(shb);
  const idb = Buffer.alloc(20);
  idb.writeUInt32LE(1, 0);
  idb.writeUInt32LE(20, 4);
  idb.writeUInt16LE(1, 8);
  idb.writeUInt32LE(65535, 12);
  idb.writeUInt32LE(20, 16);
  blocks.push(idb);
  for (const f of frames) {
    const pad = (4 - (f.data.length % 4)) % 4;
    const len = 32 + f.data.length + pad;
    const b = Buffer.alloc(len);
    b.writeUInt32LE(6, 0);
    b.writeUInt32LE(len, 4);
    const us = Math.round(f.tsMs * 1000);
    b.writeUInt32LE(Math.floor(us / 4294967296), 12);
    b.writeUInt32LE(us % 4294967296, 16);
    b.writeUInt32LE(f.data.length, 20);
    b.writeUInt32LE(f.data.length, 24);
    Buffer.from(f.data).copy(b, 28);
    b.writeUInt32LE(len, len - 4);
    blocks.push(b);
  }
  return Buffer.concat(blocks);
}

const ROOT = path.join(__dirname, '..', '..');

/** Run the built `vrouter-emu` command. */
export function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vrouter-emu.cjs'), ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** One pcapng block of `type` around `body` (padded to 4 bytes), in either byte order. */
export function pcapngBlock(type: number, body: Uint8Array, le = true): Buffer {
  const pad = (4 - (body.length % 4)) % 4;
  const len = 12 + body.length + pad;
  const b = Buffer.alloc(len);
  const w32 = (v: number, o: number): number => (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  w32(type, 0);
  w32(len, 4);
  Buffer.from(body).copy(b, 8);
  w32(len, len - 4);
  return b;
}

/** pcapng options (code, value) ending with opt_endofopt. */
export function pcapngOptions(opts: [number, Uint8Array][], le = true): Buffer {
  const parts: Buffer[] = [];
  for (const [code, v] of opts) {
    const h = Buffer.alloc(4);
    if (le) { h.writeUInt16LE(code, 0); h.writeUInt16LE(v.length, 2); } else { h.writeUInt16BE(code, 0); h.writeUInt16BE(v.length, 2); }
    parts.push(h, Buffer.from(v), Buffer.alloc((4 - (v.length % 4)) % 4));
  }
  parts.push(Buffer.alloc(4));
  return Buffer.concat(parts);
}

/**
 * A pcapng section in the given byte order with every block kind a capture tool writes: SHB with an
 * option, two Ethernet interfaces (µs, and 2^-9 s ticks), EPBs on both with an option, a name
 * resolution block, an interface statistics block, a custom block, and a simple packet block.
 */
export function pcapngSection(frames: Frame[], le = true): Buffer {
  const num = (bytes: number, v: number): Buffer => {
    const b = Buffer.alloc(bytes);
    if (bytes === 2) le ? b.writeUInt16LE(v) : b.writeUInt16BE(v);
    else le ? b.writeUInt32LE(v) : b.writeUInt32BE(v);
    return b;
  };
  const shbBody = Buffer.concat([num(4, 0x1a2b3c4d), num(2, 1), num(2, 0), Buffer.alloc(8, 0xff), pcapngOptions([[3, Buffer.from('x86_64')]], le)]);
  const idb = (tsresol: number): Buffer => pcapngBlock(1, Buffer.concat([num(2, 1), num(2, 0), num(4, 65535), pcapngOptions([[2, Buffer.from('tap0')], [9, Buffer.from([tsresol])]], le)]), le);
  const epb = (ifId: number, ticks: number, f: Uint8Array, withOpt: boolean): Buffer => pcapngBlock(6, Buffer.concat([
    num(4, ifId), num(4, Math.floor(ticks / 4294967296)), num(4, ticks % 4294967296), num(4, f.length), num(4, f.length),
    Buffer.from(f), Buffer.alloc((4 - (f.length % 4)) % 4), withOpt ? pcapngOptions([[1, Buffer.from('ok')]], le) : Buffer.alloc(0),
  ]), le);
  const blocks: Buffer[] = [pcapngBlock(0x0a0d0d0a, shbBody, le), idb(6), idb(0x89)];
  frames.forEach((f, k) => {
    if (k === 1) blocks.push(pcapngBlock(4, Buffer.concat([num(2, 1), num(2, 8), Buffer.from([10, 0, 0, 1]), Buffer.from('vm1\0'), num(2, 0), num(2, 0)]), le));
    if (k === 2) blocks.push(pcapngBlock(5, Buffer.concat([num(4, 0), num(4, 0), num(4, 0), pcapngOptions([[4, Buffer.alloc(8)]], le)]), le));
    if (k === 3) blocks.push(pcapngBlock(0x00000bad, Buffer.concat([num(4, 32473), Buffer.from('custom')]), le));
    if (k === frames.length - 1 && k > 0) {
      blocks.push(pcapngBlock(3, Buffer.concat([num(4, f.data.length), Buffer.from(f.data)]), le));
    } else if (k % 2 === 0) {
      blocks.push(epb(0, Math.round(f.tsMs * 1000), f.data, k === 0));
    } else {
      blocks.push(epb(1, Math.round(f.tsMs * 0.512), f.data, false));
    }
  });
  return Buffer.concat(blocks);
}
