/**
 * Running a real emulator instance for end-to-end tests: `vrouter-emu start` as a child process with a
 * topology of its own, a private control socket, and helpers to run commands in its VMs and the tools
 * against it. Root only: the tests declare that (and the tools they run) with `e2e` of ./requires.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, spawn, spawnSync, SpawnSyncReturns } from 'child_process';

const ROOT = path.join(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'vrouter-emu.cjs');

export { inCI, isRoot } from './requires';

export interface Instance {
  proc: ChildProcess;
  socket: string;
  dir: string;
  out: () => string;
  /** Run a tool (flow, vif, dropstats, vrouter) against this instance. */
  tool: (...args: string[]) => SpawnSyncReturns<string>;
  /** Run a command inside a VM's namespace. */
  inVm: (ns: string, cmd: string[], timeoutMs?: number) => SpawnSyncReturns<string>;
  stop: () => Promise<number | null>;
}

// Instances still running when the test process ends (a failed or timed-out test) are stopped, so that
// they clean up their namespaces.
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGTERM');
});

/**
 * Start an instance and wait until it is ready; `netns`: run it inside that network namespace (a compute
 * node of a cluster, as `ip netns exec NS vrouter-emu start --node …`).
 */
export async function startInstance(topology: object, args: string[] = [], netns?: string): Promise<Instance> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-e2e-'));
  const topo = path.join(dir, 'topology.json');
  fs.writeFileSync(topo, JSON.stringify(topology));
  const socket = path.join(dir, 'vrouter.sock');
  const argv = [BIN, 'start', '--topology', topo, '--socket', socket, ...args];
  const proc = netns === undefined
    ? spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('ip', ['netns', 'exec', netns, process.execPath, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`instance not ready after 30 s:\n${out}`)), 30000);
    const check = (): void => {
      if (out.includes('Stop with Ctrl-C')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout?.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`instance exited with ${code}:\n${out}`));
    });
  });
  const inst: Instance = {
    proc,
    socket,
    dir,
    out: () => out,
    tool: (...a) => spawnSync(process.execPath, [BIN, ...a, '--socket', socket], { encoding: 'utf8', cwd: ROOT }),
    inVm: (ns, cmd, timeoutMs = 30000) => spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', timeout: timeoutMs }),
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) {
          resolve(proc.exitCode);
          return;
        }
        proc.once('exit', (code) => resolve(code));
        proc.kill('SIGTERM');
      }),
  };
  return inst;
}

/** A topology of two VMs in one network, with names unique to the test. */
export function twoVms(tag: string, net = 10): object {
  return {
    networks: [{ name: `net-${tag}`, subnet: `10.${net}.1.0/24`, gateway: `10.${net}.1.1` }],
    vms: [
      { name: `${tag}a`, ip: `10.${net}.1.3`, network: `net-${tag}` },
      { name: `${tag}b`, ip: `10.${net}.1.4`, network: `net-${tag}` },
    ],
  };
}

/** Entries of a `flow -l` listing: the first line of each pair of lines, parsed. */
export interface ListedFlow {
  index: number;
  rindex: number;
  sip: string;
  sport: number;
  dip: string;
  dport: number;
  proto: number;
  detail: string;
}

export function parseFlowList(text: string): ListedFlow[] {
  const lines = text.split('\n');
  const out: ListedFlow[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^ *(\d+)(?:<=>(\d+))? +([\d.]+):(\d+) +([\d.]+):(\d+) +(\d+) \(\d+/.exec(lines[i]);
    if (m) {
      out.push({
        index: +m[1], rindex: m[2] === undefined ? -1 : +m[2], sip: m[3], sport: +m[4], dip: m[5], dport: +m[6], proto: +m[7],
        detail: lines[i + 1] ?? '',
      });
    }
  }
  return out;
}

/** Value of a dropstats line. */
export function dropstat(text: string, label: string): number {
  const m = new RegExp(`^${label.replace(/[()]/g, '\\$&')} +(\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether a namespace or link exists. */
export function nsExists(name: string): boolean {
  return fs.existsSync(`/run/netns/${name}`);
}

/** A promise of a child's exit, taken when it is spawned (so an early exit is not missed). */
export function exited(p: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (p.exitCode !== null) resolve(p.exitCode);
    else p.once('exit', (code) => resolve(code));
  });
}
