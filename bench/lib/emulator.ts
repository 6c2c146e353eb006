/**
 * What the root benchmarks share: shell calls, the C traffic generator, a UDP sink in a namespace, and a
 * running `vrouter-emu start` on a topology of its own, with its tools.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, execFileSync, spawn } from 'child_process';

export const ROOT = path.join(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'vrouter-emu.cjs');
export const GEN = path.join(ROOT, 'dist', 'bench', 'udpgen');

export function sh(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30, env: env ? { ...process.env, ...env } : process.env });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Exit 2 with one line unless root. */
export function needRoot(bench: string): void {
  if (process.getuid?.() !== 0) {
    console.error(`${bench} needs root (namespaces, TAP devices): sudo npm run ${bench}`);
    process.exit(2);
  }
}

/** Compile bench/tools/udpgen.c to dist/bench/udpgen. */
export function buildUdpgen(): void {
  fs.mkdirSync(path.dirname(GEN), { recursive: true });
  sh('gcc', ['-std=c99', '-O2', '-Wall', '-o', GEN, path.join(ROOT, 'bench', 'tools', 'udpgen.c')]);
}

/** A UDP socket bound to port 9 in `ns` that never reads: no ICMP port unreachable goes back. */
export function sink(ns: string): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, 'python3', '-c', "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',9))\ntime.sleep(3600)"], { stdio: 'ignore' });
}

export interface Emulator {
  socket: string;
  /** Run a tool (flow, agent, dropstats, …) against the instance; its stdout. */
  tool: (...args: string[]) => string;
  stop: () => Promise<void>;
}

/** Start an instance on `topology` with its own socket and wait until it is ready. */
export async function startEmulator(topology: object, args: string[]): Promise<Emulator> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-bench-'));
  const topo = path.join(dir, 'topology.json');
  fs.writeFileSync(topo, JSON.stringify(topology));
  const socket = path.join(dir, 'vrouter.sock');
  // EMU_NODE_ARGS: node options for the emulator, e.g. "--cpu-prof --cpu-prof-dir=DIR" to profile a bench's run.
  const nodeArgs = (process.env.EMU_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const emu = spawn(process.execPath, [...nodeArgs, BIN, 'start', '--topology', topo, '--socket', socket, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  emu.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  for (let k = 0; k < 120 && !out.includes('Stop with Ctrl-C') && emu.exitCode === null; k++) await sleep(250);
  const stop = async (): Promise<void> => {
    if (emu.exitCode === null) {
      emu.kill('SIGTERM');
      await new Promise((r) => emu.once('exit', r));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  if (!out.includes('Stop with Ctrl-C')) {
    await stop();
    throw new Error(`emulator did not start:\n${out}`);
  }
  return { socket, tool: (...a) => sh(process.execPath, [BIN, ...a, '--socket', socket]), stop };
}
