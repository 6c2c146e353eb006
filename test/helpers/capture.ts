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
