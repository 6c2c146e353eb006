/**
 * End to end, as root: the testbed's underlay (src/io/cluster.ts) — the fabric bridge, the nodes'
 * namespaces and fabric interfaces, a bare-metal host's kernel VTEP — built for real, checked with ip,
 * bridge and ping, removed; a crashed testbed's leftovers removed by the next; the verb's refusals.
 * Run under `flock /tmp/vremu-e2e.lock` like the other e2e files.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { Cluster, cleanClusterLeftovers, clusterRemove, procAlive, procStart, statePathFor } from '../../src/io/cluster';
import { controlAlive } from '../../src/cli/control';
import { BIN, nsExists } from '../helpers/instance';
import { smallClusterPlan } from '../helpers/cluster-underlay';
import { e2e } from '../helpers/requires';
import { waitFor } from '../helpers/wait';

const ROOT = path.join(__dirname, '..', '..');

function sh(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function withPrefix(prefix: string): string[] {
  return fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns').filter((n) => n.startsWith(`${prefix}-`)) : [];
}

function rootVeths(): string[] {
  return sh('ip', ['-o', 'link', 'show', 'type', 'veth']).out.split('\n').filter((l) => l.trim() !== '').map((l) => l.split(': ')[1]);
}

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT, timeout: 60000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

e2e({ root: true, tools: ['ip', 'bridge', 'ping'] }).serial('the underlay: fabric bridge, node fabric interfaces, a kernel VTEP with its fdb; removed whole', async (t) => {
  t.timeout(60000);
  t.deepEqual(withPrefix('vrt1'), [], 'no vrt1 namespaces before');
  const vethsBefore = rootVeths();
  const c = new Cluster(smallClusterPlan('vrt1'));
  c.checkFree();
  try {
    c.setupUnderlay();
    t.deepEqual(c.state.namespaces, ['vrt1-fabric', 'vrt1-n1', 'vrt1-n2', 'vrt1-vtep', 'vrt1-bms', 'vrt1-vma', 'vrt1-vmb']);
    const st = JSON.parse(fs.readFileSync(statePathFor('vrt1'), 'utf8'));
    t.deepEqual(st.namespaces, c.state.namespaces, 'the state file records them');
    t.is(st.pid, process.pid);
    // The bridge and its ports.
    const br = sh('ip', ['-n', 'vrt1-fabric', '-o', 'link', 'show', 'master', 'br-fabric']).out;
    for (const p of ['n-n1', 'n-n2', 'bm1']) t.regex(br, new RegExp(`: ${p}@`), `${p} is a port of br-fabric`);
    // A node's fabric interface: up, MTU 1500, no address, IPv6 off.
    const eth1 = sh('ip', ['-n', 'vrt1-n1', '-o', 'addr', 'show', 'dev', 'eth1']).out;
    t.is(eth1.trim(), '', 'no address on the node\'s eth1');
    t.regex(sh('ip', ['-n', 'vrt1-n1', '-o', 'link', 'show', 'eth1']).out, /<BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 /);
    t.is(sh('ip', ['netns', 'exec', 'vrt1-n1', 'cat', '/proc/sys/net/ipv6/conf/eth1/disable_ipv6']).out.trim(), '1');
    t.regex(sh('ip', ['-n', 'vrt1-n1', '-o', 'link', 'show', 'lo']).out, /UP/);
    // The bridge forwards: the node's namespace stands in for a node with an address (in this test only).
    t.is(sh('ip', ['-n', 'vrt1-n1', 'addr', 'add', '192.168.60.11/24', 'dev', 'eth1']).status, 0);
    const ping = sh('ip', ['netns', 'exec', 'vrt1-vtep', 'ping', '-c', '2', '-i', '0.2', '-W', '2', '192.168.60.11']);
    t.regex(ping.out, / 2 received, 0% packet loss/, ping.out);
    // The kernel VTEP: VNI 4242 (configured), port 4789, local address, no learning, in br0.
    const vx = sh('ip', ['-n', 'vrt1-vtep', '-d', 'link', 'show', 'vxlan4242']).out;
    t.regex(vx, /vxlan id 4242 local 192\.168\.60\.21 .*dstport 4789 nolearning/);
    t.regex(vx, /master br0/);
    t.regex(vx, /mtu 1450 /);
    const fdb = sh('bridge', ['-n', 'vrt1-vtep', 'fdb', 'show', 'dev', 'vxlan4242']).out;
    for (const e of ['00:00:00:00:00:00 dst 192.168.60.11', '00:00:00:00:00:00 dst 192.168.60.12', '02:00:0a:3c:01:03 dst 192.168.60.11', '02:00:0a:3c:01:04 dst 192.168.60.12']) {
      t.true(fdb.includes(e), `fdb has ${e}:\n${fdb}`);
    }
    // The bare-metal host: eth0 with its address, MAC, the VXLAN MTU, the default route via the gateway.
    const h = sh('ip', ['-n', 'vrt1-bms', '-o', 'addr', 'show', 'dev', 'eth0']).out;
    t.regex(h, /inet 10\.60\.1\.10\/24 /);
    t.regex(sh('ip', ['-n', 'vrt1-bms', '-o', 'link', 'show', 'eth0']).out, /mtu 1450 .*link\/ether 02:00:0a:3c:01:0a /);
    t.regex(sh('ip', ['-n', 'vrt1-bms', 'route', 'show', 'default']).out, /default via 10\.60\.1\.1 dev eth0/);
  } finally {
    const r = await clusterRemove(c.state);
    t.deepEqual(r.problems, []);
  }
  t.deepEqual(withPrefix('vrt1'), [], 'teardown leaves no vrt1 namespace');
  // Only names the testbed could have made count (other work on the host may add its own veths meanwhile).
  const leaked = rootVeths().filter((n) => !vethsBefore.includes(n) && /^(n-|bm\d|host0|eth[01]|vrt1)/.test(n));
  t.deepEqual(leaked, [], 'and no veth in the host namespace');
  t.false(fs.existsSync(statePathFor('vrt1')), 'nor its state file');
  t.false(fs.existsSync('/run/vrouter-emu/testbed-vrt1'), 'nor its run directory');
});

const FAKE_NODE = path.join(ROOT, 'test', 'helpers', 'fake-node.cjs');

e2e({ root: true, tools: ['ip', 'bridge'] }).serial('node processes: one per node in its namespace, reached by flow -l --node; stopped by SIGTERM, or SIGKILL when they hold on', async (t) => {
  t.timeout(60000);
  for (const mode of ['', 'stubborn']) {
    process.env.FAKE_NODE_MODE = mode;
    const c = new Cluster(smallClusterPlan('vrt1'));
    c.checkFree();
    try {
      c.setupUnderlay();
      fs.writeFileSync(path.join(c.plan.dir, 'topology.json'), '{}');
      await c.startNodes(path.join(c.plan.dir, 'topology.json'), FAKE_NODE, controlAlive);
      t.deepEqual(c.state.nodes.map((n) => n.name), ['n1', 'n2']);
      t.true(c.state.nodes.every(procAlive));
      const st = JSON.parse(fs.readFileSync(statePathFor('vrt1'), 'utf8'));
      t.deepEqual(st.nodes.map((n: { pid: number }) => n.pid), c.state.nodes.map((n) => n.pid), 'the state file records the node pids');
      // What each node was started with, and where: its namespace holds its fabric interface.
      const log1 = fs.readFileSync(c.plan.nodes[0].log, 'utf8');
      t.true(log1.includes(`start --topology ${c.plan.dir}/topology.json --node n1 --socket /run/vrouter-emu/testbed-vrt1/n1.sock --no-demo-traffic`), log1);
      const r = cli('flow', '-l', '--node', 'n2', '--testbed', 'vrt1');
      t.is(r.status, 0, r.stderr);
      t.regex(r.stdout, /^fake node n2 \(interfaces .*eth1.*\): flow -l\n$/);
      const bad = cli('flow', '-l', '--node', 'n3', '--testbed', 'vrt1');
      t.is(bad.status, 2);
      t.is(bad.stderr, 'vrouter-emu: testbed vrt1 has no node n3; its nodes: n1, n2 (sockets in /run/vrouter-emu/testbed-vrt1)\n');
    } finally {
      const r = await clusterRemove(c.state, 1000);
      t.deepEqual(r.problems, []);
      t.deepEqual(r.killed.length, mode === 'stubborn' ? 2 : 0, `${mode || 'obedient'} nodes: ${r.killed.length} killed`);
      delete process.env.FAKE_NODE_MODE;
    }
    t.false(c.state.nodes.some(procAlive), 'the node processes are gone');
    t.deepEqual(withPrefix('vrt1'), []);
    t.false(fs.existsSync('/run/vrouter-emu/testbed-vrt1'));
  }
});

e2e({ root: true, tools: ['ip', 'bridge'] }).serial('a node that exits while starting: the error ends with its log', async (t) => {
  t.timeout(60000);
  process.env.FAKE_NODE_MODE = 'fail';
  const c = new Cluster(smallClusterPlan('vrt1'));
  try {
    c.setupUnderlay();
    await t.throwsAsync(c.startNodes('/dev/null', FAKE_NODE, controlAlive), { message: /^node n1 exited \(status 3\) while starting; the end of \/run\/vrouter-emu\/testbed-vrt1\/n1\.log:\nfake node n1: failing on purpose$/ });
    t.is(c.state.nodes.length, 1, 'n2 was not started');
  } finally {
    delete process.env.FAKE_NODE_MODE;
    await clusterRemove(c.state, 1000);
  }
  t.deepEqual(withPrefix('vrt1'), []);
});

e2e({ root: true, tools: ['ip', 'bridge'] }).serial('a testbed killed with SIGKILL is cleaned by the next: its node processes stopped, its namespaces removed', async (t) => {
  t.timeout(60000);
  const child = spawn(process.execPath, ['-r', 'tsx/cjs', path.join(ROOT, 'test', 'helpers', 'cluster-underlay.ts'), 'vrt1'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => /ready \d+/.test(out) || child.exitCode !== null, { timeoutMs: 30000, what: 'the child testbed to be set up' });
  const standIn = Number((/ready (\d+)/.exec(out) as RegExpExecArray)[1]);
  try {
    t.true(withPrefix('vrt1').length >= 5, 'the child built the underlay');
    // While it runs: the same prefix is refused, another prefix leaves it alone.
    await t.throwsAsync(cleanClusterLeftovers('vrt1'), { message: new RegExp(`^testbed vrt1 is running \\(pid ${child.pid}\\); stop it \\(kill ${child.pid}\\), or give another --prefix$`) });
    t.deepEqual(await cleanClusterLeftovers('vrt9'), []);
    t.true(nsExists('vrt1-fabric'));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    t.not(procStart(standIn), undefined, 'its stand-in node process outlived it');
    const lines = await cleanClusterLeftovers('vrt9');
    t.regex(lines.join('\n'), new RegExp(`testbed vrt1 \\(pid ${child.pid}\\) had not exited cleanly: killed node pids ${standIn}|testbed vrt1 \\(pid ${child.pid}\\) had not exited cleanly: removed namespaces`));
    t.regex(lines.join('\n'), /removed namespaces .*vrt1-fabric/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    try {
      process.kill(standIn, 'SIGKILL');
    } catch {
      // stopped by the cleanup, as it should
    }
  }
  t.is(procStart(standIn), undefined, 'the stand-in node process was stopped');
  t.deepEqual(withPrefix('vrt1'), [], 'no vrt1 namespace is left');
  t.false(fs.existsSync(statePathFor('vrt1')));
});

e2e({ root: true, tools: ['ip'] }).serial('testbed refuses bad input in one line with exit 2 and creates nothing', async (t) => {
  t.timeout(60000);
  const one = (r: { status: number | null; stderr: string }, re: RegExp, what: string): void => {
    t.is(r.status, 2, `${what}: ${r.stderr}`);
    t.regex(r.stderr, re, what);
    t.is(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
  };
  one(cli('testbed', '--prefix', 'toolong'), /^vrouter-emu: --prefix toolong: expected 1 to 5 letters or digits/, 'long prefix');
  one(cli('testbed', '--prefix', 'vrt3', '--nodes', '9'), /^vrouter-emu: --nodes 9: expected a number of compute nodes from 1 to 8/, '--nodes 9');
  one(cli('testbed', '--prefix', 'vrt3', '--nodes', '2', '--topology', '/nonexistent.json'), /--nodes is for the embedded demo/, '--nodes with --topology');
  one(cli('testbed', '--prefix', 'vrt3', '--topology', '/nonexistent.json'), /^vrouter-emu: \/nonexistent\.json: no such topology file/, 'missing topology');
  const dir = fs.mkdtempSync('/tmp/vremu-cluster-');
  try {
    const f = path.join(dir, 'long.json');
    fs.writeFileSync(f, JSON.stringify({
      nodes: [{ name: 'compute-01', fabric_ip: '192.168.70.11/24' }], networks: [{ name: 'n', subnet: '10.70.1.0/24', gateway: '10.70.1.1' }], vms: [],
    }));
    one(cli('testbed', '--prefix', 'vrt3', '--topology', f), /nodes\[0\]\.name: "compute-01": a testbed's node names are at most 8 .*shorten it/, 'node name too long');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.is(sh('ip', ['netns', 'add', 'vrt3-fabric']).status, 0);
  try {
    one(cli('testbed', '--prefix', 'vrt3'), /^vrouter-emu: namespace vrt3-fabric exists already and is not from a testbed; remove it with: ip netns del vrt3-fabric, or give another --prefix/, 'a namespace not ours');
    t.deepEqual(withPrefix('vrt3'), ['vrt3-fabric'], 'nothing created');
  } finally {
    sh('ip', ['netns', 'del', 'vrt3-fabric']);
  }
  one(cli('flow', '-l', '--node', 'node1', '--testbed', 'vrt3'), /^vrouter-emu: no testbed vrt3 is running/, 'a tool for a testbed not running');
  t.deepEqual(withPrefix('vrt3'), []);
});

e2e({ root: true, tools: ['ip', 'ping'] }).serial('vrouter-emu testbed --prefix vrt2: the summary, flow -l --node node1 --testbed vrt2 answers, SIGINT removes everything', async (t) => {
  t.timeout(180000);
  const p = spawn(process.execPath, [BIN, 'testbed', '--prefix', 'vrt2'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  try {
    await waitFor(() => out.includes('Stop with Ctrl-C') || p.exitCode !== null, { timeoutMs: 150000, what: `the testbed's summary:\n${out}` });
    t.is(p.exitCode, null, out);
    t.regex(out, /node1: fabric 192\.168\.50\.11 on eth1 in namespace vrt2-node1, pid \d+/);
    t.regex(out, /VM vm2 10\.1\.1\.4 \(demo\) in namespace vrt2-vm2/);
    t.regex(out, /sudo vrouter-emu flow -l --node node1 --testbed vrt2/);
    t.regex(out, /Demo traffic: vm1 \(on node1\) pings vm2 \(on node2\) across the fabric\n +3 packets transmitted, [1-3] received/, 'the demo ping crosses the fabric');
    const r = cli('flow', '-l', '--node', 'node1', '--testbed', 'vrt2');
    t.is(r.status, 0, r.stderr);
    t.regex(r.stdout, /10\.1\.1\.3:\d+ +10\.1\.1\.4:0 +1 \(1\)/, 'the demo ping\'s flow on node1');
    t.deepEqual(withPrefix('vrt2').sort(), ['vrt2-fabric', 'vrt2-node1', 'vrt2-node2', 'vrt2-vm1', 'vrt2-vm2']);
  } finally {
    p.kill('SIGINT');
  }
  t.is(await exited, 0, out);
  t.regex(out, /stopped by SIGINT; stopped 2 node processes, removed namespaces/);
  t.deepEqual(withPrefix('vrt2'), [], 'no vrt2 namespace is left');
  t.false(fs.existsSync('/run/vrouter-emu/testbed-vrt2'));
  t.false(fs.existsSync(statePathFor('vrt2')));
});
