/**
 * VMware's vCenter simulator for tests: find (or build, with scripts/vcsim.sh) vcsim and govc, start a
 * vcsim on a port of its own choosing, run govc against it, stop it.
 *
 *   const needs = vcsimNeeds();                 // {} when built, else the build's tools (system-deps.json)
 *   e2e(needs).serial('…', async (t) => { const sim = await startVcsim(await vcsimBinaries()); … await sim.stop(); });
 *
 * vcsim is started with `-l 127.0.0.1:0` (the kernel picks a free port; vcsim prints the URL it serves)
 * and `-stdinexit` (it exits when our end of its stdin closes, so a test process that dies leaves no vcsim).
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'child_process';
import * as path from 'path';
import type { Needs } from './host-needs';

const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'vcsim.sh');

/** What scripts/vcsim.sh needs to build (scripts/system-deps.json names their packages). */
export const VCSIM_BUILD_TOOLS = [
  'go',
  '/usr/share/gocode/src/github.com/vmware/govmomi/go.mod',
  '/usr/share/gocode/src/github.com/kr/pretty/pretty.go',
];

export interface VcsimBinaries {
  vcsim: string;
  govc: string;
}

/** The cached binaries (`scripts/vcsim.sh --print`), or null when they are not built yet. */
export function builtVcsim(): VcsimBinaries | null {
  const r = spawnSync('bash', [SCRIPT, '--print'], { encoding: 'utf8' });
  const [vcsim, govc] = r.stdout.trim().split('\n');
  return r.status === 0 && vcsim && govc ? { vcsim, govc } : null;
}

/** What a vcsim test needs from the host: nothing when the binaries are built, else the build's tools. */
export function vcsimNeeds(): Needs {
  return builtVcsim() ? {} : { tools: VCSIM_BUILD_TOOLS };
}

/** The binaries, built first if needed (about 30 s once; the script caches them). */
export function vcsimBinaries(): Promise<VcsimBinaries> {
  const ready = builtVcsim();
  if (ready) return Promise.resolve(ready);
  return new Promise((resolve, reject) => {
    execFile('bash', [SCRIPT], { encoding: 'utf8', timeout: 600_000 }, (err, stdout, stderr) => {
      const [vcsim, govc] = stdout.trim().split('\n');
      if (err || !vcsim || !govc) reject(new Error(`scripts/vcsim.sh failed: ${stderr.trim().split('\n').pop() ?? err?.message}`));
      else resolve({ vcsim, govc });
    });
  });
}

export interface Vcsim {
  /** `https://user:pass@127.0.0.1:PORT/sdk` */
  url: string;
  proc: ChildProcess;
  /** Stops vcsim and waits until it has exited (SIGKILL after 3 s). */
  stop(): Promise<void>;
}

/** Starts a vcsim with its default inventory (DC0, DVS0, …) and resolves once it serves its URL. */
export function startVcsim(bin: VcsimBinaries, timeoutMs = 20_000): Promise<Vcsim> {
  const proc = spawn(bin.vcsim, ['-l', '127.0.0.1:0', '-stdinexit'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const fail = (why: string): void => {
      clearTimeout(timer);
      void stop().then(() => reject(new Error(`vcsim ${why}${err ? `: ${err.trim().split('\n').pop()}` : ''}`)));
    };
    const timer = setTimeout(() => fail(`printed no URL within ${timeoutMs} ms`), timeoutMs);
    proc.stderr.on('data', (b: Buffer) => { err = (err + b.toString()).slice(-4096); });
    const early = (code: number | null): void => fail(`exited (status ${code}) before serving`);
    proc.once('exit', early);
    // Keep reading both pipes for vcsim's whole life, so that it never blocks on a full one.
    proc.stdout.on('data', (b: Buffer) => {
      if (out.length > 4096) return;
      out += b.toString();
      // "export GOVC_URL=https://user:pass@127.0.0.1:46737/sdk GOVC_SIM_PID=11044"
      const m = /GOVC_URL=(\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.removeListener('exit', early);
        resolve({ url: m[1], proc, stop });
      }
    });
  });
}

/** Runs govc against `url` (GOVC_URL, GOVC_INSECURE=1); never throws. */
export function govc(bin: VcsimBinaries, url: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin.govc, args, { encoding: 'utf8', timeout: 30_000, env: { ...process.env, GOVC_URL: url, GOVC_INSECURE: '1' } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}
