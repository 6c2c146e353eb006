/**
 * bench:vcenter — vCenter mode (`start --mode vcenter`) against VMware's simulator (vcsim), as root, on
 * this 2-CPU machine:
 *  1. forwarding VM → VM through the emulated ESXi switch: two VMs spawned by the vCenter driver
 *     (their port groups and VLANs in vcsim, their NICs TAPs plugged into the switch in the datapath
 *     thread, their agent ports VLAN sub-interfaces of the trunk vif0/3): 64-byte UDP frames over an
 *     established flow, packets per second received in the receiving VM (its eth0 rx counter). Each
 *     frame is tagged by the switch, demultiplexed to its sub-interface by the trunk, tagged again by
 *     the receiving sub-interface and untagged by the switch. Baseline, same run: the same two VMs
 *     (addresses, network) on plain TAP vifs of a second instance (`start` with a topology of two VMs).
 *     As bench:forward: generator (bench/tools/udpgen.c) pinned to CPU 0, both datapath threads to
 *     CPU 1 (`--cpu 1`), 3 s per run, one flow (fixed source port). Rounds alternate vCenter / TAP
 *     (A B A B A B); medians. Goal: vCenter ≥ 0.9× TAP. Also each datapath thread's CPU time per frame
 *     (user and system, /proc/PID/task/TID/stat of the thread pinned to CPU 1): what others running on
 *     CPU 1 take from a round lowers its rate but hardly this.
 *  2. port plug rate: 100 spawns through the driver's API (the Unix socket the `vcenter-driver` verbs
 *     use) — each a VLAN from the pool, a port group in vcsim, a VM (namespace + TAP) on the ESXi host,
 *     an agent port — then 100 destroys; spawns/s and ms per spawn. Baseline, same run, same vcsim:
 *     100 port-group creations (and destroys) alone through the project's vSphere client, what vCenter
 *     costs; then, with those port groups, 100 × (`esxi vm-create` + `port --add`) over the control
 *     socket and their removal, what the rest costs (the ESXi namespace and the agent port). Rounds
 *     alternate baseline / driver; medians. Then 10 spawns and destroys through the CLI verbs (one node
 *     process per call, as a user types them).
 * Every figure is printed next to its baseline from the same run. Last line: one JSON object.
 *
 * Everything it makes is named after a per-run prefix P (5 characters, "vc" + 3 random): the ESXi VMs'
 * namespaces P<name> (--esxi-prefix P), the TAP VMs' vm-Pta / vm-Ptb, the sockets and the driver's
 * state file /run/vrouter-emu/P-*. All of it (instances, driver, vcsim, namespaces, files) is removed
 * at the end, on failure and on Ctrl-C.
 *
 * Run: sudo npm run bench:vcenter   (needs gcc, iproute2, python3, vcsim: bash scripts/vcsim.sh)
 *   ROUNDS=N (forwarding rounds, 3), PLUG_ROUNDS=N (2), PORTS=N (100), CPU_PROF=DIR (both instances
 *   under node --cpu-prof into DIR/vcenter and DIR/tap; summarise with bench/tools/cpuprofile-top.cjs).
 */
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { randomBytes, randomUUID } from 'crypto';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import { controlCall } from '../src/cli/control';
import { RUN_DIR, statePath } from '../src/io/testbed';
import { VSphere } from '../src/vcenter/vsphere';
import { type Vcsim, startVcsim, vcsimBinaries } from '../test/helpers/vcsim';
import { BIN, GEN, buildUdpgen, median, needRoot, sh, sink, sleep } from './lib/emulator';

const SECS = 3;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const PLUG_ROUNDS = Number(process.env.PLUG_ROUNDS ?? 2);
const PORTS = Number(process.env.PORTS ?? 100);
const CLI_PORTS = 10;
const CPU_PROF = process.env.CPU_PROF;
/** The measured flow's source port (udpgen binds it): every run uses the one established flow. */
const FLOW = { UDPGEN_SPORT: '40021' };

const P = `vc${Array.from(randomBytes(3), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('')}`;
const NET = { name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1' };
const IP_A = '10.1.1.3';
const IP_B = '10.1.1.4';
const VC = { sock: `${RUN_DIR}/${P}-vc.sock`, a: 'a', b: 'b', nsA: `${P}a`, nsB: `${P}b` };
const TAP = { sock: `${RUN_DIR}/${P}-tap.sock`, a: `${P}ta`, b: `${P}tb`, nsA: `vm-${P}ta`, nsB: `vm-${P}tb` };
const DRV = { listen: `${RUN_DIR}/${P}-drv.sock`, state: `${RUN_DIR}/${P}-drv.json` };
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), `vremu-bench-${P}-`));

// ---- processes ------------------------------------------------------------------------------------

interface Proc {
  name: string;
  proc: ChildProcess;
  /** The tail of its stdout and stderr. */
  out: () => string;
  exited: Promise<void>;
}

const procs: Proc[] = [];
const pids: number[] = [];

function launch(name: string, args: string[], nodeFlags: string[] = []): Proc {
  const proc = spawn(process.execPath, [...nodeFlags, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer): void => void (out = (out + b.toString()).slice(-16384));
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const p = { name, proc, out: () => out, exited };
  procs.push(p);
  if (proc.pid) pids.push(proc.pid);
  return p;
}

/** Wait until `p` prints `marker`. @throws with its output when it exits first or takes too long. */
async function ready(p: Proc, marker: string, ms = 60_000): Promise<void> {
  for (const t0 = Date.now(); !p.out().includes(marker); await sleep(100)) {
    if (p.proc.exitCode !== null || p.proc.signalCode !== null || Date.now() - t0 > ms) {
      throw new Error(`${p.name} did not start (${p.proc.exitCode ?? p.proc.signalCode ?? 'timeout'}):\n${p.out()}`);
    }
  }
}

/** SIGTERM, then SIGKILL after `ms`; resolves once it has exited. */
async function stop(p: Proc, ms = 20_000): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  p.proc.kill('SIGTERM');
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), ms);
  await p.exited;
  clearTimeout(timer);
}

function tryDo(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore' });
}

// ---- cleanup ---------------------------------------------------------------------------------------

let vcsim: Vcsim | undefined;
let vsBase: VSphere | undefined;
const sinks: ChildProcess[] = [];
let cleaning: Promise<void> | undefined;
let aborted = false;

/** Everything this run made, gone; idempotent, never throws. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const s of sinks) s.kill();
    // The driver first (it calls the instance), then the instances (they remove their namespaces), vcsim last.
    for (const p of [...procs].reverse()) await stop(p).catch(() => undefined);
    if (vsBase) await vsBase.logout();
    if (vcsim) await vcsim.stop().catch(() => undefined);
    const nss = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    for (const l of nss.split('\n')) {
      const ns = l.split(' ')[0];
      if (ns && (ns.startsWith(P) || ns.startsWith(`vm-${P}`))) tryDo('ip', ['netns', 'del', ns]);
    }
    try {
      for (const f of fs.readdirSync(RUN_DIR)) if (f.startsWith(`${P}-`) || f.startsWith(`.${P}-`)) fs.rmSync(path.join(RUN_DIR, f), { force: true, recursive: true });
    } catch {
      // no run directory: nothing of ours in it
    }
    // A killed instance leaves its state file; the next start would clean up after it, this does now.
    for (const pid of pids) fs.rmSync(statePath(pid), { force: true });
    fs.rmSync(TMP, { recursive: true, force: true });
  })();
  return cleaning;
}

function onSignal(sig: string): void {
  aborted = true;
  console.error(`bench:vcenter: ${sig}: cleaning up`);
  void cleanup().then(() => process.exit(130));
}

function checkAbort(): void {
  if (aborted) throw new Error('interrupted');
}

// ---- the driver's API (what `vcenter-driver spawn|destroy` send) ------------------------------------

function api(route: string, body: unknown): Promise<{ message: string }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request({ socketPath: DRV.listen, method: 'POST', path: route, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          const o = JSON.parse(text) as { message: string; error?: string };
          if (res.statusCode === 200) resolve(o);
          else reject(new Error(`${route} ${data}: ${o.error ?? res.statusCode}`));
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** A control-socket tool on instance `sock`. @returns its output. */
async function tool(sock: string, argv: string[]): Promise<string> {
  let out = '';
  await controlCall(sock, argv, (s) => (out += s));
  return out;
}

// ---- measuring --------------------------------------------------------------------------------------

/** The datapath thread of instance `pid`: the one thread pinned to CPU 1 (`--cpu 1`). */
function dpThread(pid: number): string {
  const task = `/proc/${pid}/task`;
  for (let k = 0; k < 50; k++) {
    for (const tid of fs.readdirSync(task)) {
      try {
        if (/^Cpus_allowed_list:\s*1$/m.test(fs.readFileSync(`${task}/${tid}/status`, 'utf8'))) return `${task}/${tid}/stat`;
      } catch {
        // a thread that just ended
      }
    }
    spawnSync('sleep', ['0.1']);
  }
  throw new Error(`no thread of pid ${pid} is pinned to CPU 1`);
}

/** A thread's user and system CPU seconds so far. */
function cpuOf(stat: string): { user: number; sys: number } {
  const f = fs.readFileSync(stat, 'utf8').replace(/^.*\) /s, '').split(' ');
  const hz = 100; // USER_HZ
  return { user: Number(f[11]) / hz, sys: Number(f[12]) / hz };
}

function rx(ns: string): number {
  return Number(sh('ip', ['netns', 'exec', ns, 'cat', '/sys/class/net/eth0/statistics/rx_packets']).trim());
}

/**
 * The generator in `ns` on CPU 0 for SECS; what `rxNs` received per second, what was offered, and the
 * datapath thread's (`stat`) CPU time per frame received, user and system (the CPU it did not get,
 * when others ran on CPU 1, does not count here: the figure the machine's noise touches least).
 */
function blast(ns: string, rxNs: string, dst: string, stat: string): { pps: number; offered: number; userUs: number; sysUs: number } {
  const a = rx(rxNs);
  const c0 = cpuOf(stat);
  const t0 = process.hrtime.bigint();
  const sent = Number(sh('taskset', ['-c', '0', 'ip', 'netns', 'exec', ns, GEN, dst, '9', '18', String(SECS)], FLOW).trim());
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const c1 = cpuOf(stat);
  const frames = Math.max(1, rx(rxNs) - a);
  return { pps: frames / dt, offered: sent / SECS, userUs: ((c1.user - c0.user) * 1e6) / frames, sysUs: ((c1.sys - c0.sys) * 1e6) / frames };
}

/** Run `op(i)` for i < n, one after the other. @returns each one's time in ms and the total in s. */
async function timed(n: number, op: (i: number) => Promise<unknown>): Promise<{ ms: number[]; secs: number }> {
  const ms: number[] = [];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    checkAbort();
    const t = process.hrtime.bigint();
    await op(i);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return { ms, secs: Number(process.hrtime.bigint() - t0) / 1e9 };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const K = (x: number): string => `${(x / 1000).toFixed(0)} kpps`;
const R = (x: number): string => x.toFixed(2);
const MS = (x: number): string => `${x.toFixed(1)} ms`;
const US = (x: number): string => `${x.toFixed(2)} µs`;
const RATE = (x: number): string => `${x.toFixed(1)}/s`;
const hex2 = (i: number): string => (i & 0xff).toString(16).padStart(2, '0');
const portIp = (i: number): string => `10.1.1.${10 + i}`;

interface Op {
  /** Operations per second over the whole series, and its mean, first-10 and last-10 ms per operation. */
  rate: number;
  ms: number;
  first: number;
  last: number;
}

function op(t: { ms: number[]; secs: number }): Op {
  return { rate: t.ms.length / t.secs, ms: mean(t.ms), first: mean(t.ms.slice(0, 10)), last: mean(t.ms.slice(-10)) };
}

/** The median round of `xs` by rate. */
function mid(xs: Op[]): Op {
  const r = median(xs.map((x) => x.rate));
  return xs.find((x) => x.rate === r) as Op;
}

async function main(): Promise<void> {
  needRoot('bench:vcenter');
  buildUdpgen();
  const bin = await vcsimBinaries();
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  fs.mkdirSync(RUN_DIR, { recursive: true });
  vcsim = await startVcsim(bin);
  const url = vcsim.url;
  const prof = (what: string): string[] => (CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(CPU_PROF, what)}`] : []);

  // The two instances, both with their datapath thread on CPU 1.
  const vcTopo = path.join(TMP, 'vcenter.json');
  fs.writeFileSync(vcTopo, JSON.stringify({ networks: [NET], vms: [] }));
  const tapTopo = path.join(TMP, 'tap.json');
  fs.writeFileSync(tapTopo, JSON.stringify({ networks: [NET], vms: [{ name: TAP.a, ip: IP_A, network: NET.name }, { name: TAP.b, ip: IP_B, network: NET.name }] }));
  const common = ['--cpu', '1', '--introspect-listen', '127.0.0.1:0'];
  const emuVc = launch('vcenter instance', ['start', '--mode', 'vcenter', '--vcenter', url, '--esxi-prefix', P, '--topology', vcTopo, '--socket', VC.sock, ...common], prof('vcenter'));
  await ready(emuVc, 'Stop with Ctrl-C');
  const emuTap = launch('TAP instance', ['start', '--topology', tapTopo, '--socket', TAP.sock, ...common], prof('tap'));
  await ready(emuTap, 'Stop with Ctrl-C');
  const driver = launch('vcenter driver', ['vcenter-driver', 'serve', '--vcenter', url, '--socket', VC.sock, '--listen', DRV.listen, '--state', DRV.state]);
  await ready(driver, 'serving on');
  checkAbort();

  // ---- 1. forwarding -------------------------------------------------------------------------------
  await api('/spawn', { name: VC.a, network: NET.name, ip: IP_A });
  await api('/spawn', { name: VC.b, network: NET.name, ip: IP_B });
  sinks.push(sink(VC.nsB), sink(TAP.nsB));
  await sleep(500);
  // ARP (the vRouter answers for the other VM) and the flow, set up before measuring.
  for (const [ns, dst] of [[VC.nsA, IP_B], [TAP.nsA, IP_B]]) {
    sh('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '2', dst]);
    sh('ip', ['netns', 'exec', ns, GEN, dst, '9', '18', '0.2'], FLOW);
  }
  await sleep(300);
  const statVc = dpThread(emuVc.proc.pid as number);
  const statTap = dpThread(emuTap.proc.pid as number);
  const f: Record<'vc' | 'tap' | 'vcOff' | 'tapOff' | 'vcUser' | 'vcSys' | 'tapUser' | 'tapSys', number[]> = {
    vc: [], tap: [], vcOff: [], tapOff: [], vcUser: [], vcSys: [], tapUser: [], tapSys: [],
  };
  for (let r = 0; r < ROUNDS; r++) {
    checkAbort();
    let x = blast(VC.nsA, VC.nsB, IP_B, statVc);
    f.vc.push(x.pps);
    f.vcOff.push(x.offered);
    f.vcUser.push(x.userUs);
    f.vcSys.push(x.sysUs);
    x = blast(TAP.nsA, TAP.nsB, IP_B, statTap);
    f.tap.push(x.pps);
    f.tapOff.push(x.offered);
    f.tapUser.push(x.userUs);
    f.tapSys.push(x.sysUs);
  }
  const nonzero = (s: string): string[] => s.split('\n').filter((l) => / [1-9]\d*$/.test(l)).map((l) => l.trim().replace(/\s+/g, ' '));
  const dropsVc = nonzero(await tool(VC.sock, ['dropstats']));
  const dropsTap = nonzero(await tool(TAP.sock, ['dropstats']));
  const vifs = (await tool(VC.sock, ['vif', '--list'])).split('\n\n').filter((b) => /Parent:vif0\/3|OS: trunk0/.test(b));
  const vifLine = vifs.map((b) => {
    const idx = /^(vif0\/\d+)/m.exec(b.trim())?.[1];
    const rxp = /RX packets:(\d+)/.exec(b)?.[1];
    const txp = /TX packets:(\d+)/.exec(b)?.[1];
    const err = /RX packets:\d+ +bytes:\d+ errors:(\d+)/.exec(b)?.[1];
    return `${idx} rx ${rxp} (errors ${err}) tx ${txp}`;
  }).join('; ');
  for (const s of sinks.splice(0)) s.kill();

  // ---- 2. port plug rate ------------------------------------------------------------------------------
  vsBase = await VSphere.connect(url);
  const dvs = await vsBase.findDvs('DVS0');
  const pl: Record<'pgAdd' | 'pgDel' | 'rest' | 'restDel' | 'vmAdd' | 'portAdd' | 'portDel' | 'vmDel' | 'spawn' | 'destroy', Op[]> = {
    pgAdd: [], pgDel: [], rest: [], restDel: [], vmAdd: [], portAdd: [], portDel: [], vmDel: [], spawn: [], destroy: [],
  };
  /** The time of `op` in ms, pushed on `into`. */
  const part = async (into: number[], op: () => Promise<unknown>): Promise<void> => {
    const t = process.hrtime.bigint();
    await op();
    into.push(Number(process.hrtime.bigint() - t) / 1e6);
  };
  const parts = (ms: number[]): Op => op({ ms, secs: ms.reduce((a, b) => a + b, 0) / 1000 });
  for (let r = 0; r < PLUG_ROUNDS; r++) {
    // Baseline: port groups alone, then the ESXi VMs and agent ports on them.
    const vs = vsBase;
    const pgs: { name: string; key: string; vlan: number; uuid: string }[] = [];
    pl.pgAdd.push(op(await timed(PORTS, async (i) => {
      const name = `${NET.name}-${P}x${i}-r${r}`;
      const vlan = 1000 + i;
      pgs.push({ name, key: await vs.createPortgroup(dvs, name, vlan), vlan, uuid: randomUUID() });
    })));
    const ms: Record<'vmAdd' | 'portAdd' | 'portDel' | 'vmDel', number[]> = { vmAdd: [], portAdd: [], portDel: [], vmDel: [] };
    pl.rest.push(op(await timed(PORTS, async (i) => {
      const g = pgs[i];
      const mac = `02:bc:00:00:${hex2(i >> 8)}:${hex2(i)}`;
      await part(ms.vmAdd, () => tool(VC.sock, ['esxi', 'vm-create', `x${i}`, '--portgroup', g.name, '--network', NET.name, '--ip', portIp(i), '--mac', mac]));
      await part(ms.portAdd, () => tool(VC.sock, ['port', '--add', g.uuid, '--vm', `x${i}`, '--network', NET.name, '--ip', portIp(i), '--mac', mac, '--vlan', String(g.vlan)]));
    })));
    pl.restDel.push(op(await timed(PORTS, async (i) => {
      await part(ms.portDel, () => tool(VC.sock, ['port', '--delete', pgs[i].uuid]));
      await part(ms.vmDel, () => tool(VC.sock, ['esxi', 'vm-delete', `x${i}`]));
    })));
    for (const k of ['vmAdd', 'portAdd', 'portDel', 'vmDel'] as const) pl[k].push(parts(ms[k]));
    pl.pgDel.push(op(await timed(PORTS, (i) => vs.destroyPortgroup(pgs[i].key))));
    // The driver: the whole spawn, then the whole destroy.
    pl.spawn.push(op(await timed(PORTS, (i) => api('/spawn', { name: `s${i}`, network: NET.name, ip: portIp(i) }))));
    pl.destroy.push(op(await timed(PORTS, (i) => api('/destroy', { name: `s${i}` }))));
  }
  // Through the CLI verbs, a node process per call.
  const verb = (args: string[]): Promise<void> => new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [BIN, 'vcenter-driver', ...args, '--listen', DRV.listen], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`vcenter-driver ${args.join(' ')}: ${code}: ${err}`))));
  });
  const cliSpawn = op(await timed(CLI_PORTS, (i) => verb(['spawn', `c${i}`, '--network', NET.name, '--ip', portIp(120 + i)])));
  const cliDestroy = op(await timed(CLI_PORTS, (i) => verb(['destroy', `c${i}`])));
  const left = await tool(VC.sock, ['esxi', 'list']);

  // ---- report ------------------------------------------------------------------------------------------
  const vc = median(f.vc);
  const tap = median(f.tap);
  const m = Object.fromEntries(Object.entries(pl).map(([k, v]) => [k, mid(v)])) as Record<keyof typeof pl, Op>;
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`run prefix ${P}; load average at the end ${load}`);
  console.log(`1. forwarding VM → VM, 64-byte frames, generator on CPU 0, datapath threads on CPU 1, ${SECS} s per run, rounds alternate vCenter / TAP, median of ${ROUNDS}`);
  console.log(`  vCenter mode (ESXi switch, VLAN sub-interfaces of trunk vif0/3) ${K(vc)}   plain TAP vifs ${K(tap)}   ratio ${R(vc / tap)}   (runs ${f.vc.map(K).join(', ')} / ${f.tap.map(K).join(', ')})`);
  console.log(`  offered by the generator: vCenter ${K(median(f.vcOff))}   TAP ${K(median(f.tapOff))}`);
  const cpuVc = median(f.vcUser.map((u, i) => u + f.vcSys[i]));
  const cpuTap = median(f.tapUser.map((u, i) => u + f.tapSys[i]));
  console.log(`  datapath thread CPU per frame (user + system): vCenter ${US(cpuVc)} (${US(median(f.vcUser))} + ${US(median(f.vcSys))})   TAP ${US(cpuTap)} (${US(median(f.tapUser))} + ${US(median(f.tapSys))})   ratio TAP / vCenter ${R(cpuTap / cpuVc)}`);
  console.log(`  vCenter vifs: ${vifLine}`);
  console.log(`  dropstats (non-zero): vCenter ${dropsVc.length ? dropsVc.join('; ') : 'none'}   TAP ${dropsTap.length ? dropsTap.join('; ') : 'none'}`);
  const row = (label: string, x: Op, b: Op | undefined, bl = ''): void => console.log(`  ${label.padEnd(40)} ${RATE(x.rate).padStart(8)}  ${MS(x.ms).padStart(9)} each (first 10 ${MS(x.first)}, last 10 ${MS(x.last)})` +
    (b ? `   ${bl} ${RATE(b.rate)} / ${MS(b.ms)}   ratio ${R(x.rate / b.rate)}` : ''));
  console.log(`2. port plug rate against vcsim, ${PORTS} ports one after the other, rounds alternate baseline / driver, median of ${PLUG_ROUNDS} (runs: spawn ${pl.spawn.map((x) => RATE(x.rate)).join(', ')}; port group ${pl.pgAdd.map((x) => RATE(x.rate)).join(', ')})`);
  row('spawn through the driver', m.spawn, m.pgAdd, 'port groups alone');
  row('destroy through the driver', m.destroy, m.pgDel, 'port groups alone');
  row('baseline: port-group creation (client)', m.pgAdd, undefined);
  row('baseline: port-group destroy (client)', m.pgDel, undefined);
  row('the rest: esxi vm-create + port --add', m.rest, undefined);
  row('  of which esxi vm-create', m.vmAdd, undefined);
  row('  of which port --add', m.portAdd, undefined);
  row('the rest: port --delete + esxi vm-delete', m.restDel, undefined);
  row('  of which port --delete', m.portDel, undefined);
  row('  of which esxi vm-delete', m.vmDel, undefined);
  console.log(`  a spawn's ${MS(m.spawn.ms)} ≈ port group ${MS(m.pgAdd.ms)} + ESXi VM ${MS(m.vmAdd.ms)} + agent port ${MS(m.portAdd.ms)}; the remainder ${MS(m.spawn.ms - m.pgAdd.ms - m.rest.ms)} is the driver (VLAN pool, state file, HTTP) and noise`);
  console.log(`  through the CLI verbs (${CLI_PORTS}, a node process each): spawn ${MS(cliSpawn.ms)}, destroy ${MS(cliDestroy.ms)}`);
  const stray = left.split('\n').map((l) => l.split('\t')[0]).filter((n) => n && n !== VC.a && n !== VC.b && !/^no VMs/.test(n));
  console.log(`  left on the ESXi host afterwards, besides a and b: ${stray.length ? stray.join(', ') : 'nothing'}`);
  console.log(JSON.stringify({
    bench: 'vcenter', prefix: P,
    pps64: Math.round(vc), baselineTapPps64: Math.round(tap), ratio64: +(vc / tap).toFixed(2),
    runsPps64: f.vc.map(Math.round), runsTapPps64: f.tap.map(Math.round), offeredPps64: Math.round(median(f.vcOff)), offeredTapPps64: Math.round(median(f.tapOff)),
    dpCpuUsPerFrame: +cpuVc.toFixed(3), baselineTapDpCpuUsPerFrame: +cpuTap.toFixed(3), ratioDpCpu: +(cpuTap / cpuVc).toFixed(2),
    dpUserUsPerFrame: +median(f.vcUser).toFixed(3), dpSysUsPerFrame: +median(f.vcSys).toFixed(3),
    baselineTapDpUserUsPerFrame: +median(f.tapUser).toFixed(3), baselineTapDpSysUsPerFrame: +median(f.tapSys).toFixed(3),
    ports: PORTS,
    spawnsPerSec: +m.spawn.rate.toFixed(2), msPerSpawn: +m.spawn.ms.toFixed(1),
    destroysPerSec: +m.destroy.rate.toFixed(2), msPerDestroy: +m.destroy.ms.toFixed(1),
    baselinePortgroupCreatesPerSec: +m.pgAdd.rate.toFixed(2), msPerPortgroupCreate: +m.pgAdd.ms.toFixed(1),
    baselinePortgroupDestroysPerSec: +m.pgDel.rate.toFixed(2), msPerPortgroupDestroy: +m.pgDel.ms.toFixed(1),
    ratioSpawnToPortgroup: +(m.spawn.rate / m.pgAdd.rate).toFixed(2), ratioDestroyToPortgroup: +(m.destroy.rate / m.pgDel.rate).toFixed(2),
    msPerEsxiVmAndPort: +m.rest.ms.toFixed(1), msPerPortAndEsxiVmDelete: +m.restDel.ms.toFixed(1),
    msPerEsxiVmCreate: +m.vmAdd.ms.toFixed(1), msPerPortAdd: +m.portAdd.ms.toFixed(1), msPerPortDelete: +m.portDel.ms.toFixed(1), msPerEsxiVmDelete: +m.vmDel.ms.toFixed(1),
    cliMsPerSpawn: +cliSpawn.ms.toFixed(1), cliMsPerDestroy: +cliDestroy.ms.toFixed(1),
    goals: { ratio64: 0.9 },
  }));
}

main()
  .catch((e: Error & { signal?: string }) => {
    // A Ctrl-C reaches the generator (same process group) before this process's handler runs.
    if (e.signal === 'SIGINT' || e.signal === 'SIGTERM') aborted = true;
    console.error(aborted ? 'bench:vcenter: interrupted' : e.stack ?? e.message);
    process.exitCode = aborted ? 130 : 1;
  })
  .finally(() => cleanup());
