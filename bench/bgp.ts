/**
 * bench:bgp — routes over BGP in a `vrouter-emu testbed` with route_source "bgp" (two emulator nodes,
 * the gobgpd route reflector, an FRR EVPN gateway), as root on this 2-CPU machine:
 *  - convergence: a VM created at run time on node 1 (`vif --add`), while a VM on node 2 sends it a UDP
 *    datagram every 2 ms (each from a new source port, so each is a new flow): the time from the
 *    `vif --add` to the first datagram the new VM receives. Baseline, same event: the time until the FRR
 *    gateway has the new VM's MAC in its kernel fdb (`bridge monitor fdb`), learned from the same route.
 *  - churn: 10 000 EVPN MAC/IP routes injected at the reflector (its gRPC API, AddPathStream) and then
 *    withdrawn: the time until node 1's agent has installed (removed) all of them in its datapath, against
 *    the time until FRR's bgpd has learned (dropped) them (`show bgp l2vpn evpn summary json`, pfxRcd),
 *    measured in the same run from the same injection; routes/s and the ratio FRR time / agent time
 *    (≥ 1: the agent keeps up with FRR).
 * Medians of ROUNDS. Last line: one JSON object.
 *
 * Run: sudo npm run bench:bgp   (needs gobgpd, golang-github-osrg-gobgp-dev, frr, python3)
 * Environment: ROUNDS=3 (convergence: 5 × ROUNDS/3 VMs), ROUTES=10000.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess, execFile, spawn } from 'child_process';
import { BIN, median, needRoot, sh, sleep } from './lib/emulator';
import { FAMILY_EVPN, GobgpClient, Msg, pack } from '../src/agent/bgp/gobgp-api';
import { routeTarget } from '../src/agent/bgp/contrail-bgp';

const P = 'bbg';
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const ROUTES = Number(process.env.ROUTES ?? 10000);
const FAB = '192.168.63';
const FAKE_VTEP = `${FAB}.200`;
const GW = `${P}-gw1`;

function topology(): object {
  return {
    route_source: 'bgp',
    nodes: [{ name: 'node1', fabric_ip: `${FAB}.11/24` }, { name: 'node2', fabric_ip: `${FAB}.12/24` }],
    networks: [{ name: 'bench', subnet: '10.64.0.0/16', gateway: '10.64.0.1' }],
    vms: [
      { name: 'vm1', ip: '10.64.0.3', network: 'bench', node: 'node1', namespace: `${P}-vm1` },
      { name: 'vm2', ip: '10.64.0.4', network: 'bench', node: 'node2', namespace: `${P}-vm2` },
    ],
    bare_metal: [{ name: 'gw1', vtep_ip: `${FAB}.21`, ip: '10.64.0.50', network: 'bench', namespace: `${P}-host`, vtep_namespace: GW }],
  };
}

function cli(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 }, (e, out, err) => (e ? reject(new Error(`${args.join(' ')}: ${err || e.message}`)) : resolve(out)));
  });
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28 }, (_e, out) => resolve(out ?? ''));
  });
}

async function summary(node: string): Promise<{ installed: number; lastChange: number }> {
  return JSON.parse(await cli('bgp', '--summary', '--json', '--node', node, '--testbed', P)) as { installed: number; lastChange: number };
}

async function installed(node: string): Promise<number> {
  return (await summary(node)).installed;
}

async function frrPrefixes(): Promise<number> {
  const out = await run('vtysh', ['-N', GW, '-c', 'show bgp l2vpn evpn summary json']);
  try {
    const j = JSON.parse(out.slice(out.indexOf('{'))) as { peers?: Record<string, { pfxRcd?: number }> };
    return Object.values(j.peers ?? {}).reduce((a, p) => a + (p.pfxRcd ?? 0), 0);
  } catch {
    return -1;
  }
}

/** Poll `f` until `done(value)`; @returns ms from `t0` to the first poll that saw it. */
async function until(what: string, f: () => Promise<number>, done: (v: number) => boolean, t0: number, timeoutMs: number): Promise<number> {
  for (;;) {
    const v = await f();
    const t = performance.now();
    if (done(v)) return t - t0;
    if (t - t0 > timeoutMs) throw new Error(`timed out waiting for ${what} (last value ${v})`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------------
// The injector (this file run inside the fabric namespace: `inject add|del N`)

function macOf(k: number): string {
  return `02:01:${[(k >>> 24) & 255, (k >>> 16) & 255, (k >>> 8) & 255, k & 255].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

function pathOf(k: number, rt: { asn: number; local: number }): Msg {
  const nlri = pack('EVPNMACIPAdvertisementRoute', {
    rd: pack('RouteDistinguisherIPAddress', { admin: FAKE_VTEP, assigned: 1 }), esi: { type: 0, value: Buffer.alloc(9) }, ethernet_tag: 0,
    mac_address: macOf(k), ip_address: `10.64.${100 + (k >>> 8)}.${k & 255}`, labels: [1],
  });
  return {
    family: FAMILY_EVPN, nlri,
    pattrs: [
      pack('OriginAttribute', { origin: 0 }),
      pack('MpReachNLRIAttribute', { family: FAMILY_EVPN, next_hops: [FAKE_VTEP], nlris: [nlri] }),
      pack('ExtendedCommunitiesAttribute', {
        communities: [pack('TwoOctetAsSpecificExtended', { is_transitive: true, sub_type: 2, asn: rt.asn, local_admin: rt.local }), pack('EncapExtended', { tunnel_type: 8 })],
      }),
    ],
  };
}

async function inject(op: string, n: number): Promise<void> {
  const c = new GobgpClient('127.0.0.1:50051');
  await c.ready(5000);
  const rt = routeTarget(64512, 0);
  if (op === 'add') {
    const reqs: Msg[] = [];
    for (let k = 0; k < n; k += 500) {
      const paths = [];
      for (let j = k; j < Math.min(n, k + 500); j++) paths.push(pathOf(j, rt));
      reqs.push({ table_type: 0, paths });
    }
    await c.stream('AddPathStream', reqs);
  } else {
    await c.call('DeletePath', { table_type: 0, family: FAMILY_EVPN }, 120_000); // every path of the family
  }
  c.close();
}

// ---------------------------------------------------------------------------------------------------

const RECEIVER = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', 9999))
print('ready', flush=True)
s.recv(64)
print('%.6f' % time.time(), flush=True)
`;
const SENDER = `
import socket, sys, time
dst = sys.argv[1]
while True:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b'x', (dst, 9999))
    s.close()
    time.sleep(0.002)
`;

/** One convergence sample: VM k added on node 1. @returns [first packet ms, FRR fdb ms]. */
async function converge(k: number): Promise<[number, number]> {
  const ns = `${P}-c${k}`;
  const ip = `10.64.1.${10 + k}`;
  const mac = `02:00:0a:40:01:${(10 + k).toString(16).padStart(2, '0')}`;
  const port = `${P}c${k}`;
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['link', 'add', 'name', port, 'netns', `${P}-node1`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  sh('ip', ['-n', `${P}-node1`, 'link', 'set', port, 'up']);
  sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'address', mac, 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', `${ip}/16`, 'dev', 'eth0']);
  const procs: ChildProcess[] = [];
  try {
    const recv = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', RECEIVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(recv);
    let rout = '';
    recv.stdout?.on('data', (d: Buffer) => (rout += d.toString()));
    const mon = spawn('ip', ['netns', 'exec', GW, 'bridge', 'monitor', 'fdb'], { stdio: ['ignore', 'pipe', 'ignore'] });
    procs.push(mon);
    let fdbAt = 0;
    mon.stdout?.on('data', (d: Buffer) => {
      if (fdbAt === 0 && d.toString().includes(`${mac} dev`)) fdbAt = Date.now();
    });
    const send = spawn('ip', ['netns', 'exec', `${P}-vm2`, 'python3', '-c', SENDER, ip], { stdio: 'ignore' });
    procs.push(send);
    while (!rout.includes('ready')) await sleep(10);
    await sleep(300); // the sender's flows are failing (no route): the steady state before the VM appears
    const t0 = Date.now();
    await cli('vif', '--add', port, '--type', 'virtual', '--vm', `c${k}`, '--ip', ip, '--mac', mac, '--network', 'bench', '--node', 'node1', '--testbed', P);
    const end = Date.now() + 20_000;
    while ((rout.split('\n').length < 3 || fdbAt === 0) && Date.now() < end) await sleep(5);
    const first = Number(rout.split('\n')[1]) * 1000;
    if (!(first > 0) || fdbAt === 0) throw new Error(`VM c${k}: no packet or no fdb entry within 20 s`);
    await cli('vif', '--delete', port, '--node', 'node1', '--testbed', P);
    return [first - t0, fdbAt - t0];
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    sh('ip', ['netns', 'del', ns]);
  }
}

async function churn(base: number, frrBase: number): Promise<{ add: [number, number]; del: [number, number] }> {
  const bench = path.join(__dirname, 'bgp.cjs');
  const go = (op: string): Promise<void> => new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', `${P}-fabric`, process.execPath, bench, 'inject', op, String(ROUTES)], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`inject ${op}: status ${code}`))));
  });
  const out: { add: [number, number]; del: [number, number] } = { add: [0, 0], del: [0, 0] };
  for (const op of ['add', 'del'] as const) {
    const t0 = performance.now();
    const e0 = Date.now();
    const inj = go(op);
    const want = op === 'add' ? base + ROUTES : base;
    const frrWant = op === 'add' ? frrBase + ROUTES : frrBase;
    const [, f] = await Promise.all([
      // The agent's time is its own record of the last change (the CLI poll takes ~0.2 s a round).
      until(`node1 to have ${want} routes`, () => installed('node1'), (v) => v === want, t0, 120_000),
      until(`FRR to have ${frrWant} prefixes`, frrPrefixes, (v) => v === frrWant, t0, 120_000),
    ]);
    const a = (await summary('node1')).lastChange - e0;
    await inj;
    out[op] = [a, f];
    console.log(`  ${op === 'add' ? 'learn' : 'withdraw'} ${ROUTES} routes: agent installed in ${(a / 1000).toFixed(2)} s (${Math.round(ROUTES / (a / 1000))}/s), FRR learned in ${(f / 1000).toFixed(2)} s (${Math.round(ROUTES / (f / 1000))}/s): ratio ${(f / a).toFixed(2)}`);
  }
  return out;
}

async function main(): Promise<void> {
  if (process.argv[2] === 'inject') {
    await inject(process.argv[3], Number(process.argv[4]));
    return;
  }
  needRoot('bench:bgp');
  const dir = fs.mkdtempSync('/tmp/bench-bgp-');
  const topo = path.join(dir, 'topology.json');
  fs.writeFileSync(topo, JSON.stringify(topology()));
  const bed = spawn(process.execPath, [BIN, 'testbed', '--prefix', P, '--topology', topo], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  bed.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  bed.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  try {
    while (!log.includes('Stop with Ctrl-C')) {
      if (bed.exitCode !== null) throw new Error(`the testbed exited:\n${log}`);
      await sleep(100);
    }
    for (const n of ['node1', 'node2']) while ((await installed(n)) < 2) await sleep(200);
    while ((await frrPrefixes()) < 4) await sleep(200);
    // node2's VM reaches the new VMs through the gateway (no ARP for an address that has no route yet).
    sh('ip', ['-n', `${P}-vm2`, 'route', 'add', '10.64.1.0/24', 'via', '10.64.0.1']);
    console.log('bench:bgp — convergence: vif --add on node 1 → first datagram from node 2\'s VM (baseline: the FRR gateway\'s fdb entry for it)');
    const conv: [number, number][] = [];
    for (let k = 0; k < Math.max(5, Math.round((5 * ROUNDS) / 3)); k++) {
      const [a, f] = await converge(k);
      conv.push([a, f]);
      console.log(`  VM ${k}: first packet after ${Math.round(a)} ms; FRR's fdb after ${Math.round(f)} ms`);
    }
    const firstMs = Math.round(median(conv.map((c) => c[0])));
    const fdbMs = median(conv.map((c) => c[1]));
    console.log(`  median: first packet ${firstMs} ms (goal < 1000 ms), FRR ${fdbMs} ms: ratio FRR/agent ${(fdbMs / firstMs).toFixed(2)}`);

    console.log(`bench:bgp — churn: ${ROUTES} EVPN MAC/IP routes at the reflector, node 1's agent installing them vs FRR's bgpd learning them (same injection)`);
    const base = await installed('node1');
    const frrBase = await frrPrefixes();
    const rounds: { add: [number, number]; del: [number, number] }[] = [];
    for (let r = 0; r < ROUNDS; r++) rounds.push(await churn(base, frrBase));
    const addA = median(rounds.map((x) => x.add[0]));
    const addF = median(rounds.map((x) => x.add[1]));
    const delA = median(rounds.map((x) => x.del[0]));
    const delF = median(rounds.map((x) => x.del[1]));
    console.log(`  median learn: agent ${Math.round(ROUTES / (addA / 1000))} routes/s, FRR ${Math.round(ROUTES / (addF / 1000))} routes/s: ratio ${(addF / addA).toFixed(2)} (goal ≥ 1.0)`);
    console.log(`  median withdraw: agent ${Math.round(ROUTES / (delA / 1000))} routes/s, FRR ${Math.round(ROUTES / (delF / 1000))} routes/s: ratio ${(delF / delA).toFixed(2)}`);
    console.log(JSON.stringify({
      bench: 'bgp', firstPacketMs: firstMs, frrFdbMs: fdbMs, convergenceRatio: +(fdbMs / firstMs).toFixed(2),
      routes: ROUTES, learnAgentPerS: Math.round(ROUTES / (addA / 1000)), learnFrrPerS: Math.round(ROUTES / (addF / 1000)), learnRatio: +(addF / addA).toFixed(2),
      withdrawAgentPerS: Math.round(ROUTES / (delA / 1000)), withdrawFrrPerS: Math.round(ROUTES / (delF / 1000)), withdrawRatio: +(delF / delA).toFixed(2),
    }));
  } catch (e) {
    // The nodes' and daemons' logs go with the testbed: keep them for the report.
    const keep = '/tmp/bench-bgp-logs';
    fs.rmSync(keep, { recursive: true, force: true });
    fs.cpSync(`/run/vrouter-emu/testbed-${P}`, keep, { recursive: true, filter: (f) => !f.endsWith('.sock') });
    console.error(`bench:bgp: the testbed's logs are in ${keep}`);
    throw e;
  } finally {
    bed.kill('SIGINT');
    while (bed.exitCode === null) await sleep(100);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e: Error) => {
  console.error(`bench:bgp: ${e.message}`);
  process.exit(1);
});
