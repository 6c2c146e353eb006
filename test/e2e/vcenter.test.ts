/**
 * vCenter mode end to end, against VMware's own simulator (vcsim, built by scripts/vcsim.sh): the
 * vRouter with its trunk vif and the emulated ESXi host (start --mode vcenter), the vCenter driver
 * (vcenter-driver serve) spawning four VMs — govc reads back four port groups with distinct VLANs — the
 * VMs pinging each other through the vRouter on their VLAN sub-interfaces, a VM on a port group nobody
 * plugged into the vRouter (its VLAN unknown there: dropped, counted), a spawn that fails and rolls
 * back, destroy, and a driver restart that keeps the VLANs.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import test from 'ava';
import { BIN, Instance, dropstat, parseFlowList, startInstance } from '../helpers/instance';
import { e2e } from '../helpers/requires';
import { type Vcsim, type VcsimBinaries, govc, startVcsim, vcsimBinaries, vcsimNeeds } from '../helpers/vcsim';
import { waitFor } from '../helpers/wait';

const ROOT = path.join(__dirname, '..', '..');
const P = `v${(process.pid % 10000).toString(36)}`; // per-run prefix for namespaces and sockets
const NET = { networks: [{ name: 'vcn', subnet: '10.41.1.0/24', gateway: '10.41.1.1' }], vms: [] };

const kids: ChildProcess[] = [];
let sim: Vcsim | undefined;
test.after.always(async () => {
  for (const k of kids) if (k.exitCode === null) k.kill('SIGTERM');
  if (sim) await sim.stop();
});

/** The driver process (serve), its output, and a way to run its verbs. */
async function serveDriver(url: string, socket: string, listen: string, state: string, extra: string[] = []): Promise<{ proc: ChildProcess; out: () => string }> {
  const proc = spawn(process.execPath, [BIN, 'vcenter-driver', 'serve', '--vcenter', url, '--socket', socket, '--listen', listen, '--state', state, ...extra], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  kids.push(proc);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('serving on') || proc.exitCode !== null, { timeoutMs: 30000, intervalMs: 100, what: 'the driver serving' });
  if (proc.exitCode !== null) throw new Error(`driver exited: ${out}`);
  return { proc, out: () => out };
}

const drv = (listen: string, ...a: string[]) => spawnSync(process.execPath, [BIN, 'vcenter-driver', ...a, '--listen', listen], { encoding: 'utf8', cwd: ROOT, timeout: 120000 });

async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const done = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  await done;
}

/** The port groups vCenter has on DVS0 (name → VLAN), read with govc. */
async function portgroups(bin: VcsimBinaries, url: string): Promise<Map<string, number>> {
  const found = await govc(bin, url, ['find', '/', '-type', 'DistributedVirtualPortgroup']);
  const m = new Map<string, number>();
  for (const p of found.stdout.trim().split('\n').filter(Boolean)) {
    const v = await govc(bin, url, ['object.collect', '-s', p, 'config.defaultPortConfig.vlan.vlanId']);
    m.set(path.basename(p), Number(v.stdout.trim()));
  }
  return m;
}

/** One frame sent out of `ns`'s eth0 as is (a raw packet socket). */
function rawSend(ns: string, hex: string): void {
  const py = `import socket,binascii;s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW);s.bind(("eth0",0));s.send(binascii.unhexlify("${hex}"))`;
  const r = spawnSync('ip', ['netns', 'exec', ns, 'python3', '-c', py], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
}

e2e({ root: true, tools: ['ip', 'ping', 'python3', 'qemu-system-x86_64', ...(vcsimNeeds().tools ?? [])] }).serial('vCenter mode: the driver spawns 4 namespace VMs and a qemu guest on port groups of their own; they ping through the vRouter on VLAN sub-interfaces; a foreign VLAN drops; destroy and a driver restart', async (t) => {
  t.timeout(300000);
  const bin = await vcsimBinaries();
  sim = await startVcsim(bin);
  const url = sim.url;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-vc-'));
  const state = path.join(dir, 'driver.json');
  const listen = `/run/vrouter-emu/${P}-drv.sock`;
  let inst: Instance | undefined;
  try {
    inst = await startInstance(NET, ['--mode', 'vcenter', '--vcenter', url, '--esxi-prefix', `${P}-`]);
    const vr = inst;
    t.regex(vr.out(), /vCenter mode: ESXi host on https:\/\/127\.0\.0\.1:\d+\/sdk, switch DVS0, trunk vif0\/3/);
    t.regex(vr.out(), /vCenter mode: trunk vif0\/3 \(trunk0\); networks vcn 10\.41\.1\.0\/24; no VMs yet\. Spawn them with:\n +sudo vrouter-emu vcenter-driver serve --vcenter URL --socket /);
    const d = await serveDriver(url, vr.socket, listen, state, ['--vlan-pool', '300-305']);

    // Four VMs through the driver: a port group and a VLAN each.
    const vms = ['a', 'b', 'c', 'd'];
    for (const [k, n] of vms.entries()) {
      const r = drv(listen, 'spawn', n, '--network', 'vcn', '--ip', `10.41.1.${11 + k}`);
      t.is(r.status, 0, r.stderr);
      t.regex(r.stdout, new RegExp(`^spawned ${n}: 10\\.41\\.1\\.${11 + k} 02:[0-9a-f:]+ in vcn, port [0-9a-f-]{36} on port group vcn-${n}-[0-9a-f-]{36} \\(VLAN ${300 + k}\\)`));
    }
    const pgs = await portgroups(bin, url);
    const ours = [...pgs].filter(([name]) => name.startsWith('vcn-'));
    // (four so far; a qemu guest comes next)
    t.is(ours.length, 4, 'govc finds four port groups');
    t.deepEqual(ours.map(([, v]) => v).sort(), [300, 301, 302, 303], 'with distinct VLANs from the pool');

    // The VMs ping each other through the vRouter.
    for (const [src, dst] of [['a', '10.41.1.12'], ['b', '10.41.1.13'], ['c', '10.41.1.14'], ['d', '10.41.1.11']]) {
      const p = vr.inVm(`${P}-${src}`, ['ping', '-c', '2', '-i', '0.2', '-W', '2', dst]);
      t.is(p.status, 0, `${src} → ${dst}: ${p.stdout}${p.stderr}`);
    }
    // A qemu guest on the host: its tap read by packet socket, its frames tagged like the others'.
    const q = drv(listen, 'spawn', 'q', '--network', 'vcn', '--ip', '10.41.1.15', '--kind', 'qemu');
    t.is(q.status, 0, q.stderr);
    t.regex(q.stdout, /\(VLAN 304\)/);
    const consoleLog = path.join(path.dirname(vr.socket), 'console', 'q.log');
    await waitFor(() => fs.existsSync(consoleLog) && fs.readFileSync(consoleLog, 'utf8').includes('vrouter-emu-guest: q up'), { timeoutMs: 120000, intervalMs: 500, what: 'the guest q up' });
    const pq = vr.inVm(`${P}-a`, ['ping', '-c', '3', '-i', '0.3', '-W', '3', '10.41.1.15']);
    t.is(pq.status, 0, `a → q (qemu): ${pq.stdout}${pq.stderr}`);
    t.regex(vr.tool('esxi', 'list').stdout, /^q\tvcn-q-[0-9a-f-]{36}\tVLAN 304\t10\.41\.1\.15\t02:[0-9a-f:]+\tqemu pid \d+$/m);

    // vif --list: the trunk (physical, promiscuous) and five sub-interfaces with their VLANs.
    const vifs = vr.tool('vif', '--list').stdout;
    t.regex(vifs, /vif0\/3 {6}OS: trunk0\n {12}Type:Physical HWaddr:00:50:56:00:00:01 IPaddr:0\n {12}Vrf:0 Flags:L3L2Pr /);
    for (let k = 0; k < 5; k++) {
      t.regex(vifs, new RegExp(`vif0/${4 + k} {6}OS: NULL Vlan\\(o/i\\)\\(,S\\): ${300 + k}/${300 + k} Bridge Index: 0 Parent:vif0/3\\n {12}Type:Virtual\\(Vlan\\) `));
    }
    // flow -l: the flows are keyed by the sub-interfaces' nexthops (vif0/4.. → nh 11..).
    const flows = parseFlowList(vr.tool('flow', '-l').stdout);
    const keyNh = (f: { detail: string } | undefined): number => Number(/K\(nh\):(\d+)/.exec(f?.detail ?? '')?.[1]);
    const ab = flows.find((f) => f.sip === '10.41.1.11' && f.dip === '10.41.1.12');
    t.truthy(ab, 'a → b has a flow');
    t.is(keyNh(ab), 11, 'keyed by vif0/4\'s nexthop');
    t.is(keyNh(flows.find((f) => f.sip === '10.41.1.12' && f.dip === '10.41.1.11')), 12, 'b → a keyed by vif0/5\'s');

    // A VM on a port group made by hand (govc), powered on by the ESXi host, never plugged into the
    // vRouter: its frames arrive tagged with a VLAN no sub-interface has — IF Drop, the trunk's RX errors.
    t.is((await govc(bin, url, ['dvs.portgroup.add', '-dvs', 'DVS0', '-vlan', '777', 'by-hand'])).code, 0);
    const cr = vr.tool('esxi', 'vm-create', 'x', '--portgroup', 'by-hand', '--network', 'vcn', '--ip', '10.41.1.99', '--mac', '02:00:0a:29:01:63');
    t.is(cr.status, 0, cr.stderr);
    t.regex(cr.stdout, /on port group by-hand \(VLAN 777\)/);
    const before = dropstat(vr.tool('dropstats').stdout, 'IF Drop');
    rawSend(`${P}-x`, 'ffffffffffff02000a290163' + '0806' + '0001080006040001' + '02000a290163' + '0a290163' + '000000000000' + '0a29010b');
    vr.inVm(`${P}-x`, ['ping', '-c', '2', '-i', '0.2', '-W', '1', '10.41.1.11']);
    const after = dropstat(vr.tool('dropstats').stdout, 'IF Drop');
    t.true(after - before >= 3, `IF Drop grew by ${after - before}`);
    t.regex(vr.tool('vif', '--list').stdout, /vif0\/3 {6}OS: trunk0\n(?: {12}.*\n){2} {12}RX packets:\d+ {2}bytes:\d+ errors:[1-9]/, 'the trunk\'s own RX errors');

    // A spawn the agent refuses (the address is a's), after its port group and VM were made: rolled
    // back, nothing left, its VLAN free again.
    const bad = drv(listen, 'spawn', 'e', '--network', 'vcn', '--ip', '10.41.1.11');
    t.is(bad.status, 2);
    t.regex(bad.stderr, /spawn e: port --add: 10\.41\.1\.11 is already vif0\/4 \(a\)/, 'the agent refused the address; rolled back');
    t.false(fs.existsSync(`/run/netns/${P}-e`), 'its VM was deleted');
    t.false([...(await portgroups(bin, url)).keys()].some((n) => /^vcn-e-[0-9a-f]{8}-/.test(n)), 'its port group was destroyed');
    const pool = drv(listen, 'spawn', 'f', '--network', 'vcn', '--ip', '10.41.1.16');
    t.is(pool.status, 0, pool.stderr);
    t.regex(pool.stdout, /\(VLAN 305\)/, 'the lowest free VLAN: e\'s 305 came back');
    const full = drv(listen, 'spawn', 'g', '--network', 'vcn', '--ip', '10.41.1.17');
    t.is(full.status, 2);
    t.regex(full.stderr, /VLAN pool 300-305 exhausted/);

    // Destroy removes the port group and the port; the VLAN is free again.
    const de = drv(listen, 'destroy', 'f');
    t.is(de.status, 0, de.stderr);
    t.false([...(await portgroups(bin, url)).keys()].some((n) => n.startsWith('vcn-f-')), 'f\'s port group is gone');
    t.false(fs.existsSync(`/run/netns/${P}-f`));

    // A driver restart keeps the VLANs (the state file), and plug_vifs after the agent lost a port restores it.
    const listed = drv(listen, 'list', '--json');
    const vlansBefore = (JSON.parse(listed.stdout) as { name: string; port: { vlan: number } }[]).map((i) => [i.name, i.port.vlan]);
    await stopProc(d.proc);
    const unplug = vr.tool('port', '--delete', (JSON.parse(listed.stdout) as { port: { uuid: string } }[])[1].port.uuid);
    t.is(unplug.status, 0, unplug.stderr);
    t.not(vr.inVm(`${P}-a`, ['ping', '-c', '1', '-W', '1', '10.41.1.12']).status, 0, 'b unplugged from the agent');
    const d2 = await serveDriver(url, vr.socket, listen, state);
    t.regex(d2.out(), /re-plugged b: agent port [0-9a-f-]{36} added on VLAN 301/);
    const vlansAfter = (JSON.parse(drv(listen, 'list', '--json').stdout) as { name: string; port: { vlan: number } }[]).map((i) => [i.name, i.port.vlan]);
    t.deepEqual(vlansAfter, vlansBefore, 'same instances, same VLANs');
    t.is(vr.inVm(`${P}-a`, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '10.41.1.12']).status, 0, 'b reachable again');
    await stopProc(d2.proc);
  } finally {
    if (inst) await inst.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.false(fs.existsSync(`/run/netns/${P}-a`), 'the ESXi VMs went with the instance');
});

e2e({ root: true, tools: ['ip', ...(vcsimNeeds().tools ?? [])] }).serial('vCenter mode, bad input: no --vcenter, an unreachable vCenter, an unknown DVS, a bad VLAN pool — one line, exit 2, nothing left', async (t) => {
  t.timeout(120000);
  const run = (...a: string[]) => spawnSync(process.execPath, [BIN, ...a], { encoding: 'utf8', cwd: ROOT, timeout: 60000 });
  const noUrl = run('start', '--mode', 'vcenter', '--socket', `/run/vrouter-emu/${P}-b.sock`);
  t.is(noUrl.status, 2);
  t.regex(noUrl.stderr, /--mode vcenter needs --vcenter https:\/\/user:pass@HOST\/sdk/);
  const dead = run('start', '--mode', 'vcenter', '--vcenter', 'https://u:p@127.0.0.1:1/sdk', '--socket', `/run/vrouter-emu/${P}-b.sock`);
  t.is(dead.status, 2);
  t.regex(dead.stderr, /vcenter: cannot reach https:\/\/127\.0\.0\.1:1\/sdk/);
  t.is(dead.stderr.trim().split('\n').length, 1, dead.stderr);
  const bin = await vcsimBinaries();
  sim ??= await startVcsim(bin);
  const noDvs = run('start', '--mode', 'vcenter', '--vcenter', sim.url, '--dvs', 'NoSuchDVS', '--socket', `/run/vrouter-emu/${P}-b.sock`);
  t.is(noDvs.status, 2);
  t.regex(noDvs.stderr, /NoSuchDVS/);
  t.false(fs.existsSync(`/run/vrouter-emu/${P}-b.sock`), 'no socket left');
  const pool = run('vcenter-driver', 'serve', '--vcenter', sim.url, '--vlan-pool', '0-5000', '--listen', `/run/vrouter-emu/${P}-bd.sock`);
  t.is(pool.status, 2);
  t.regex(pool.stderr, /--vlan-pool 0-5000: expected a VLAN range FIRST-LAST within 1-4094/);
  const kvm = run('start', '--dvs', 'DVS0', '--socket', `/run/vrouter-emu/${P}-b.sock`);
  t.is(kvm.status, 2);
  t.regex(kvm.stderr, /--dvs is for --mode vcenter/);
});
