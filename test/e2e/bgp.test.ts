/**
 * End to end, as root: routes over BGP. `vrouter-emu testbed` with route_source "bgp" — three emulator
 * nodes (each agent with its own gobgpd speaker), a gobgpd route reflector on the fabric and an FRR EVPN
 * gateway (zebra + bgpd on a kernel VXLAN device and bridge) with a host behind it. Nothing static: the
 * gateway learns the VMs from the emulator's routes and the nodes learn the host from FRR's.
 *
 * Asserted: every pair pings, iperf3 TCP both ways between the host and a VM and between nodes; the
 * reflector's RIB and FRR's list the emulator's routes with their VNI and next hop; a VM added at run
 * time is announced and its withdrawal is seen on the other node (its flows become short, No
 * Destination route) and it comes back; malformed routes injected at the reflector are refused and
 * counted; the reflector killed: the nodes keep forwarding on stale routes and re-learn when it is
 * back; the stop leaves no daemon, namespace or FRR directory.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import type { ExecutionContext } from 'ava';
import { BIN } from '../helpers/instance';
import { e2e } from '../helpers/requires';
import { waitFor, waitListening } from '../helpers/wait';

const ROOT = path.join(__dirname, '..', '..');
const P = `bg${process.pid % 1000}`;
const FAB = '192.168.61';
const TOOLS = ['ip', 'bridge', 'ping', 'iperf3', 'gobgpd', 'gobgp', 'vtysh'];

function sh(cmd: string, args: string[], timeout = 30000): { status: number | null; out: string; stdout: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, stdout: r.stdout ?? '' };
}

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT, timeout: 60000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ping(ns: string, ip: string, n = 3): boolean {
  return sh('ip', ['netns', 'exec', ns, 'ping', '-c', String(n), '-i', '0.2', '-W', '1', ip]).out.includes(` ${n} received`);
}

interface Status {
  installed: number;
  rejected: Record<string, number>;
  peers: { state: string }[];
  received: { type: string; prefix: string; stale: boolean; nexthop: string; label: number }[];
  sent: { type: string; prefix: string }[];
}

function bgp(node: string): Status {
  const r = cli('bgp', '--json', '--node', node, '--testbed', P);
  if (r.status !== 0) throw new Error(`vrouter-emu bgp --node ${node}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

function topology(): object {
  return {
    route_source: 'bgp',
    nodes: [
      { name: 'node1', fabric_ip: `${FAB}.11/24` },
      { name: 'node2', fabric_ip: `${FAB}.12/24`, encapsulations: ['MPLSoUDP', 'VXLAN'] },
      { name: 'node3', fabric_ip: `${FAB}.13/24`, encapsulations: ['VXLAN'] },
    ],
    networks: [{ name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1' }],
    vms: [
      { name: 'vm1', ip: '10.1.1.3', network: 'demo', node: 'node1', namespace: `${P}-vm1` },
      { name: 'vm2', ip: '10.1.1.4', network: 'demo', node: 'node2', namespace: `${P}-vm2` },
      { name: 'vm3', ip: '10.1.1.5', network: 'demo', node: 'node3', namespace: `${P}-vm3` },
    ],
    bare_metal: [{ name: 'gw1', vtep_ip: `${FAB}.21`, ip: '10.1.1.50', network: 'demo', namespace: `${P}-host`, vtep_namespace: `${P}-gw1` }],
    global_vrouter_config: { encapsulation_priorities: { encapsulation: ['MPLSoUDP', 'MPLSoGRE', 'VXLAN'] } },
  };
}

function daemonPid(name: string): number {
  const st = JSON.parse(fs.readFileSync(`/run/vrouter-emu/testbeds/${P}.json`, 'utf8')) as { daemons: { name: string; pid: number }[] };
  return st.daemons.find((d) => d.name === name)?.pid ?? -1;
}

/** The control-plane processes of the testbed: its daemons (state file) and the nodes' speakers (pid files). */
function controlPids(): number[] {
  const st = JSON.parse(fs.readFileSync(`/run/vrouter-emu/testbeds/${P}.json`, 'utf8')) as { daemons: { pid: number }[] };
  const dir = `/run/vrouter-emu/testbed-${P}`;
  const speakers = fs.readdirSync(dir).filter((f) => f.endsWith('.gobgpd.pid')).map((f) => Number(fs.readFileSync(path.join(dir, f), 'utf8')));
  return [...st.daemons.map((d) => d.pid), ...speakers];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function ours(): string[] {
  const procs = sh('ps', ['-eo', 'pid,args']).out.split('\n').filter((l) => /zebra|bgpd/.test(l) && l.includes(`${P}-`));
  const ns = fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns').filter((n) => n.startsWith(`${P}-`)) : [];
  const frr = fs.existsSync('/var/run/frr') ? fs.readdirSync('/var/run/frr').filter((n) => n.startsWith(`${P}-`)) : [];
  return [...procs, ...ns.map((n) => `namespace ${n}`), ...frr.map((n) => `/var/run/frr/${n}`)];
}

async function iperf(t: ExecutionContext, serverNs: string, serverIp: string, clientNs: string, what: string): Promise<void> {
  const port = 5201 + Math.floor(Math.random() * 500);
  const srv = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1', '-p', String(port)], { stdio: 'ignore' });
  try {
    await waitListening(serverNs, port);
    const r = sh('ip', ['netns', 'exec', clientNs, 'iperf3', '-c', serverIp, '-p', String(port), '-t', '2', '-J'], 30000);
    t.is(r.status, 0, `${what}: iperf3 ran (${r.out.slice(-300)})`);
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } };
    t.true(j.end.sum_received.bytes > 1_000_000, `${what}: iperf3 moved ${j.end.sum_received.bytes} bytes`);
  } finally {
    srv.kill();
  }
}

e2e({ root: true, tools: TOOLS }).serial('three nodes and an FRR gateway learn each other over BGP: ping, iperf3, VM withdrawn and re-added, bad routes refused, reflector killed and back, clean stop', async (t) => {
  t.timeout(300_000);
  t.deepEqual(ours(), [], `nothing of testbed ${P} before`);
  const dir = fs.mkdtempSync('/tmp/vre-bgp-');
  const topo = path.join(dir, 'topology.json');
  fs.writeFileSync(topo, JSON.stringify(topology()));
  let bed: ChildProcess | undefined;
  let log = '';
  let pids: number[] = [];
  try {
    bed = spawn(process.execPath, [BIN, 'testbed', '--prefix', P, '--topology', topo], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    bed.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    bed.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    await waitFor(() => log.includes('Stop with Ctrl-C') || bed?.exitCode !== null, { timeoutMs: 120_000, what: 'the testbed to start' });
    t.is(bed.exitCode, null, `the testbed runs:\n${log}`);
    t.regex(log, /starting the route reflector on 192\.168\.61\.254 \(gobgpd, AS 64512\) and 1 FRR gateway/);
    t.regex(fs.readFileSync(`/run/vrouter-emu/testbed-${P}/node1.log`, 'utf8'), /routes over BGP: this node's gobgpd \(AS 64512\) peers with the route reflector 192\.168\.61\.254; \d+ remote routes learned so far/, 'the node\'s banner says where its routes come from');
    // Each node learns the two other VMs and the host (FRR's MAC/IP route).
    for (const n of ['node1', 'node2', 'node3']) await waitFor(() => bgp(n).installed === 3, { timeoutMs: 30_000, what: `${n} to install 3 remote routes` });

    // Reachability: every VM pair, and the host with every VM.
    const hosts: [string, string][] = [[`${P}-vm1`, '10.1.1.3'], [`${P}-vm2`, '10.1.1.4'], [`${P}-vm3`, '10.1.1.5'], [`${P}-host`, '10.1.1.50']];
    for (const [a] of hosts) for (const [b, ip] of hosts) if (a !== b) t.true(ping(a, ip), `${a} pings ${ip}`);
    await iperf(t, `${P}-host`, '10.1.1.50', `${P}-vm1`, 'vm1 → host (VXLAN to FRR)');
    await iperf(t, `${P}-vm1`, '10.1.1.3', `${P}-host`, 'host → vm1');
    await iperf(t, `${P}-vm3`, '10.1.1.5', `${P}-vm2`, 'vm2 → vm3 (node2 to node3)');

    // What the reflector and FRR hold: vm1's MAC/IP route, VNI 1 (network id), next hop node1.
    const rib = JSON.parse(sh('ip', ['netns', 'exec', `${P}-fabric`, 'gobgp', 'global', 'rib', '-a', 'evpn', '-j']).stdout) as Record<string, { nlri: { value: { mac: string; ip: string; labels?: number[] } }; nexthop?: string; attrs: { type: number; nexthop?: string }[] }[]>;
    const vm1 = Object.values(rib).flat().find((p) => p.nlri.value.ip === '10.1.1.3');
    t.truthy(vm1, 'the reflector has vm1\'s MAC/IP route');
    t.deepEqual(vm1?.nlri.value.labels, [1], 'with VNI 1');
    t.true(JSON.stringify(vm1).includes(`${FAB}.11`), 'next hop node1');
    const frr = sh('vtysh', ['-N', `${P}-gw1`, '-c', 'show bgp l2vpn evpn route type macip json']).stdout;
    const frrJ = JSON.parse(frr.slice(frr.indexOf('{'))) as Record<string, Record<string, { paths: { vni?: string; nexthops?: { ip: string }[] }[][] } | unknown>>;
    const rd1 = frrJ[`${FAB}.11:1`] as Record<string, { paths: { nexthops: { ip: string }[] }[][] }>;
    t.truthy(rd1, `FRR has node1's RD (${Object.keys(frrJ).join(', ')})`);
    const key = Object.keys(rd1).find((k) => k.includes('10.1.1.3'));
    t.truthy(key, 'FRR lists vm1\'s MAC/IP route');
    t.is(rd1[key as string].paths[0][0].nexthops[0].ip, `${FAB}.11`);
    // The VNI FRR took from the route (the per-RD listing carries it on each path).
    const one = sh('vtysh', ['-N', `${P}-gw1`, '-c', `show bgp l2vpn evpn route rd ${FAB}.11:1 type macip json`]).stdout;
    const oneJ = JSON.parse(one.slice(one.indexOf('{'))) as Record<string, Record<string, { paths: { VNI?: string }[][] }>>;
    t.is(oneJ[`${FAB}.11:1`][key as string].paths[0][0].VNI, '1', 'FRR reads VNI 1 from vm1\'s route');
    const fdb = sh('ip', ['netns', 'exec', `${P}-gw1`, 'bridge', 'fdb', 'show', 'dev', 'vxlan1']).out;
    t.regex(fdb, new RegExp(`02:00:0a:01:01:03 dst ${FAB.replace(/\./g, '\\.')}\\.11 self extern_learn`), 'FRR programmed vm1\'s MAC behind node1 (learned, not static)');
    t.notRegex(fdb, /^(?!00:00:00:00:00:00)\S+ dst .* permanent/m, 'no static remote MAC entry');
    for (const n of [11, 12, 13]) t.regex(fdb, new RegExp(`00:00:00:00:00:00 dst ${FAB.replace(/\./g, '\\.')}\\.${n} self`), `flooding to node .${n}: from its type-3 route`);
    const s1 = bgp('node1');
    t.true(s1.received.some((r) => r.type === '2' && r.prefix.endsWith('10.1.1.50') && r.nexthop === `${FAB}.21`), 'node1 learned the host from FRR');

    // A VM added at run time on node2 is announced; deleting it withdraws it on node1; re-adding brings it back.
    const vm4 = `${P}-vm4`;
    t.is(sh('ip', ['netns', 'add', vm4]).status, 0);
    t.is(sh('ip', ['link', 'add', 'name', `${P}v4`, 'netns', `${P}-node2`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', vm4]).status, 0);
    sh('ip', ['-n', `${P}-node2`, 'link', 'set', `${P}v4`, 'up']);
    sh('ip', ['-n', vm4, 'link', 'set', 'eth0', 'address', '02:00:0a:01:01:06', 'up']);
    sh('ip', ['-n', vm4, 'addr', 'add', '10.1.1.6/24', 'dev', 'eth0']);
    sh('ip', ['-n', vm4, 'route', 'add', 'default', 'via', '10.1.1.1']);
    const add = (): void => {
      const r = cli('vif', '--add', `${P}v4`, '--type', 'virtual', '--vm', 'vm4', '--ip', '10.1.1.6', '--mac', '02:00:0a:01:01:06', '--network', 'demo', '--node', 'node2', '--testbed', P);
      t.is(r.status, 0, r.stderr);
    };
    add();
    await waitFor(() => bgp('node1').installed === 4, { timeoutMs: 15_000, what: 'node1 to learn vm4' });
    t.true(ping(`${P}-vm1`, '10.1.1.6'), 'vm1 reaches the VM added at run time');
    const toVm4 = (): { action: string; short: boolean }[] =>
      (JSON.parse(cli('agent', 'flows', '--json', '--node', 'node1', '--testbed', P).stdout) as { dip: string; action: string; short: boolean }[]).filter((f) => f.dip === '10.1.1.6');
    t.true(toVm4().some((f) => f.action === 'F' && !f.short), 'node1 has a forwarding flow towards vm4');
    const del = cli('vif', '--delete', `${P}v4`, '--node', 'node2', '--testbed', P);
    t.is(del.status, 0, del.stderr);
    await waitFor(() => bgp('node1').installed === 3, { timeoutMs: 15_000, what: 'node1 to see vm4 withdrawn' });
    // The flows through the withdrawn route are re-evaluated: none forwards any more (short, dropping, or already aged out).
    await waitFor(() => toVm4().every((f) => f.short && f.action.startsWith('D')), { timeoutMs: 10_000, what: 'node1\'s flows towards vm4 to become short drops' });
    t.false(ping(`${P}-vm1`, '10.1.1.6', 2), 'vm4 is unreachable once withdrawn');
    t.notRegex(cli('rt', '--dump', '1', '--node', 'node1', '--testbed', P).stdout, /10\.1\.1\.6\/32/, 'node1 has no route to vm4');
    add();
    await waitFor(() => bgp('node1').installed === 4, { timeoutMs: 15_000, what: 'node1 to learn vm4 again' });
    t.true(ping(`${P}-vm1`, '10.1.1.6'), 'vm4 is back');

    // Malformed routes from a peer (injected at the reflector): refused and counted, never installed.
    const before = bgp('node1');
    const inject = (...a: string[]): void => {
      const r = sh('ip', ['netns', 'exec', `${P}-fabric`, 'gobgp', 'global', 'rib', ...a]);
      t.is(r.status, 0, `gobgp global rib ${a.join(' ')}: ${r.out}`);
    };
    inject('-a', 'evpn', 'add', 'macadv', '02:00:0a:01:01:63', '10.1.1.99', 'etag', '0', 'label', '777', 'rd', `${FAB}.99:1`, 'rt', '64512:8000001', 'encap', 'vxlan', 'nexthop', `${FAB}.99`);
    inject('-a', 'evpn', 'add', 'macadv', '02:00:0a:01:01:62', '10.1.1.98', 'etag', '0', 'label', '1', 'rd', '10.9.9.9:1', 'rt', '64512:8000001', 'encap', 'vxlan', 'nexthop', '10.9.9.9');
    inject('-a', 'vpnv4', 'add', '10.1.1.97/32', 'label', '3', 'rd', `${FAB}.97:1`, 'rt', '64512:8000001', 'nexthop', `${FAB}.97`);
    await waitFor(() => {
      const r = bgp('node1').rejected;
      return (r['bad-vni'] ?? 0) > (before.rejected['bad-vni'] ?? 0) && (r['nexthop-outside-fabric'] ?? 0) > (before.rejected['nexthop-outside-fabric'] ?? 0) &&
        (r['bad-label'] ?? 0) > (before.rejected['bad-label'] ?? 0);
    }, { timeoutMs: 15_000, what: 'node1 to refuse the three bad routes' });
    t.is(bgp('node1').installed, 4, 'none of them installed');
    t.notRegex(cli('rt', '--dump', '1', '--node', 'node1', '--testbed', P).stdout, /10\.1\.1\.9[789]\/32/);

    // The reflector killed: the nodes keep forwarding on the routes they had (stale), then re-learn.
    const rr = daemonPid('reflector');
    t.true(rr > 0);
    process.kill(rr, 'SIGKILL');
    await waitFor(() => bgp('node1').received.some((r) => r.stale), { timeoutMs: 10_000, what: 'node1 to mark its routes stale' });
    t.true(ping(`${P}-vm1`, '10.1.1.4'), 'vm1 → vm2 forwards on stale routes while the reflector is gone');
    t.true(ping(`${P}-vm3`, '10.1.1.3'), 'vm3 → vm1 too');
    t.is(bgp('node1').installed, 4, 'the routes are still installed');
    await waitFor(() => daemonPid('reflector') !== rr, { timeoutMs: 10_000, what: 'the testbed to start the reflector again' });
    await waitFor(() => {
      const s = bgp('node1');
      return s.peers[0]?.state === 'ESTABLISHED' && s.received.length > 0 && !s.received.some((r) => r.stale);
    }, { timeoutMs: 60_000, what: 'node1 to re-learn every route from the restarted reflector' });
    t.is(bgp('node1').installed, 4);
    for (const [a] of hosts.slice(0, 3)) for (const [b, ip] of hosts) if (a !== b) t.true(ping(a, ip), `after the restart: ${a} pings ${ip}`);
    await waitFor(() => ping(`${P}-host`, '10.1.1.3', 1), { timeoutMs: 30_000, what: 'the host to reach vm1 again (FRR re-learned)' });
    pids = controlPids();
    t.is(pids.length, 6, 'the reflector, zebra, bgpd and three speakers');
  } finally {
    if (bed && bed.exitCode === null) {
      bed.kill('SIGINT');
      await waitFor(() => bed?.exitCode !== null, { timeoutMs: 60_000, what: 'the testbed to stop' }).catch(() => bed?.kill('SIGKILL'));
    }
    sh('ip', ['netns', 'del', `${P}-vm4`]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.regex(log, /stopped by SIGINT; stopped 3 node processes/);
  t.deepEqual(ours(), [], 'no daemon, namespace or FRR directory of the testbed is left');
  t.deepEqual(pids.filter(alive), [], 'the reflector, the FRR daemons and the speakers are gone');
});

e2e({ root: true, tools: ['ip', 'gobgpd'] }).serial('bad BGP input: a bad AS number, an unreachable reflector — one line, exit 2, nothing left', (t) => {
  t.timeout(120_000);
  const dir = fs.mkdtempSync('/tmp/vre-bgp-');
  try {
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ ...topology(), bgp: { as: 0 } }));
    const r = cli('testbed', '--prefix', P, '--topology', bad);
    t.is(r.status, 2);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, /bad\.json: bgp\.as: 0: expected an AS number/);
    // A node whose reflector does not answer (no testbed around it): start gives up with the reason.
    const ns = `${P}-lone`;
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['netns', 'add', `${P}-lvm`]);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    try {
      sh('ip', ['-n', ns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth2']);
      sh('ip', ['-n', ns, 'link', 'set', 'eth1', 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'eth2', 'up']);
      const lone = path.join(dir, 'lone.json');
      fs.writeFileSync(lone, JSON.stringify({
        route_source: 'bgp', nodes: [{ name: 'n1', fabric_ip: '192.168.62.11/24' }], networks: [{ name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1' }],
        vms: [{ name: 'vm1', ip: '10.1.1.3', network: 'demo', node: 'n1', namespace: `${P}-lvm` }],
      }));
      const s = spawnSync('ip', ['netns', 'exec', ns, process.execPath, BIN, 'start', '--topology', lone, '--node', 'n1', '--socket', path.join(dir, 'n1.sock'), '--no-demo-traffic'], { encoding: 'utf8', cwd: ROOT, timeout: 90_000 });
      t.is(s.status, 2, s.stderr);
      t.regex(s.stderr, /bgp\.reflectors: no BGP session within 20 s \(192\.168\.62\.254 (ACTIVE|IDLE|CONNECT)\): is a route reflector running/);
      t.is(sh('ip', ['-n', `${P}-lvm`, '-o', 'link', 'show']).out.split('\n').filter((l) => l.trim() !== '').length, 1, 'the VM\'s TAP is gone (only lo is left)');
      t.is(sh('ip', ['netns', 'pids', ns]).out.trim(), '', 'no gobgpd (or anything) left in the node\'s namespace');
      t.false(fs.existsSync(path.join(dir, 'n1.sock.gobgpd.pid')));
    } finally {
      sh('ip', ['netns', 'del', ns]);
      sh('ip', ['netns', 'del', `${P}-lvm`]);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
