/**
 * End to end, as root: two compute nodes, each its own emulator process in its own namespace, joined by
 * a Linux bridge as the underlay — for each encapsulation in turn, ping and an iperf3 TCP stream from a VM
 * on node1 to a VM on node2, both nodes' flows (SSrEEr), tshark decoding the fabric with checksums
 * right; the Linux kernel's own VXLAN device as a third VTEP with a host behind it; garbage on the
 * fabric; and a clean stop that leaves nothing behind.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import { BIN as BIN_PATH, Instance, dropstat, exited, parseFlowList, startInstance } from '../helpers/instance';
import { e2e } from '../helpers/requires';
import { underlayUp, vtepUp } from '../helpers/underlay';
import { waitFor, waitListening } from '../helpers/wait';

type Encap = 'MPLSoGRE' | 'MPLSoUDP' | 'VXLAN';

function cluster(p: string, encaps: Encap[], extra: Record<string, unknown> = {}): object {
  return {
    nodes: [
      { name: 'node1', fabric_ip: '192.168.50.11/24' },
      { name: 'node2', fabric_ip: '192.168.50.12/24' },
    ],
    networks: [{ name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1' }],
    vms: [
      { name: `${p}a`, ip: '10.1.1.3', network: 'demo', node: 'node1' },
      { name: `${p}b`, ip: '10.1.1.4', network: 'demo', node: 'node2' },
    ],
    global_vrouter_config: { encapsulation_priorities: { encapsulation: encaps } },
    ...extra,
  };
}

async function startNodes(topo: object, nodeNs: string[]): Promise<Instance[]> {
  const out: Instance[] = [];
  try {
    for (let k = 0; k < nodeNs.length; k++) out.push(await startInstance(topo, ['--node', `node${k + 1}`, '--no-demo-traffic'], nodeNs[k]));
  } catch (e) {
    for (const i of out) await i.stop();
    throw e;
  }
  return out;
}

/** Capture on the underlay bridge while `during` runs: the frames' protocol stacks and checksum verdicts. */
async function capture(fabricNs: string, during: () => Promise<void>): Promise<string[]> {
  const file = `/tmp/vremu-ov-${process.pid}.pcap`;
  const cap = spawn('ip', ['netns', 'exec', fabricNs, 'tshark', '-q', '-i', 'br-fabric', '-w', file, '-a', 'duration:30'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const capDone = exited(cap);
  let err = '';
  cap.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await waitFor(() => /Capturing on/.test(err), { timeoutMs: 15000, what: 'tshark to capture' });
  await during();
  // dumpcap writes what it captured in batches: let the last frames reach the file before stopping it.
  await new Promise((r) => setTimeout(r, 1000));
  cap.kill('SIGINT');
  await capDone;
  const r = spawnSync('tshark', ['-r', file, '-d', 'udp.port==6635,mpls', '-o', 'ip.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=|',
    '-e', 'frame.protocols', '-e', 'ip.checksum.status', '-e', 'mpls.label', '-e', 'vxlan.vni'], { encoding: 'utf8' });
  fs.rmSync(file, { force: true });
  return r.stdout.split('\n').filter((l) => l !== '');
}

const STACK: Record<Encap, string> = {
  MPLSoGRE: 'eth:ethertype:ip:gre:mpls:ip:icmp',
  MPLSoUDP: 'eth:ethertype:ip:udp:mpls:ip:icmp',
  VXLAN: 'eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:icmp',
};

for (const [k, encap] of (['MPLSoGRE', 'MPLSoUDP', 'VXLAN'] as const).entries()) {
  e2e({ root: true, tools: ['ip', 'ping', 'iperf3', 'tshark'] }).serial(`two nodes over ${encap}: ping, iperf3 with SSrEEr on both nodes, tshark decodes, clean stop`, async (t) => {
    t.timeout(180000);
    const p = `ov${k}`;
    const u = underlayUp(p, 2);
    const [a, b] = [`vm-${p}a`, `vm-${p}b`];
    let nodes: Instance[] = [];
    try {
      nodes = await startNodes(cluster(p, [encap]), u.nodes);
      const [n1, n2] = nodes;
      t.regex(n1.out(), new RegExp(`peer node2 192\\.168\\.50\\.12: ${encap}`));
      // The first packets may find the tunnel still resolving its destination's MAC.
      await waitFor(() => spawnSync('ip', ['netns', 'exec', a, 'ping', '-c', '1', '-W', '1', '10.1.1.4']).status === 0, { timeoutMs: 20000, what: `vm ${p}a to reach ${p}b over ${encap}` });
      const lines = await capture(u.fabric, async () => {
        const ping = n1.inVm(a, ['ping', '-c', '3', '-i', '0.2', '-W', '2', '10.1.1.4']);
        t.is(ping.status, 0, ping.stdout + ping.stderr);
        t.regex(ping.stdout, /ttl=(63|64)/);
      });
      const tunnel = lines.filter((l) => l.startsWith(STACK[encap]));
      t.true(tunnel.length >= 4, `tshark decodes ${encap} with the inner ICMP (${lines.slice(0, 8).join(' / ')})`);
      // ip.checksum.status: 1 = good (0 bad, 2 unverified), for the outer and the inner header.
      for (const l of tunnel) t.deepEqual(l.split('|')[1].split(','), ['1', '1'], `IP checksums good (outer and inner): ${l}`);
      if (encap === 'VXLAN') t.true(tunnel.every((l) => l.split('|')[3] === '1'), 'VNI 1: the network id');
      else t.true(tunnel.every((l) => l.split('|')[2] === '16'), 'label 16: each node\'s first VM');

      const srv = spawn('ip', ['netns', 'exec', b, 'iperf3', '-s', '-1', '-p', '5201'], { stdio: 'ignore' });
      await waitListening(b, 5201);
      const cl = spawn('ip', ['netns', 'exec', a, 'iperf3', '-c', '10.1.1.4', '-t', '3', '-p', '5201', '-J'], { stdio: ['ignore', 'pipe', 'ignore'] });
      const clDone = exited(cl);
      let json = '';
      cl.stdout.on('data', (d: Buffer) => (json += d.toString()));
      const tcp = (i: Instance) => parseFlowList(i.tool('flow', '-l').stdout).filter((f) => f.proto === 6 && (f.dport === 5201 || f.sport === 5201));
      // Both nodes' listings taken while the transfer runs (once it ends, the closed connections go).
      let seen: ReturnType<typeof tcp>[] = [];
      await waitFor(() => {
        seen = [tcp(n1), tcp(n2)];
        return seen.every((l) => l.length >= 4 && l.every((f) => /TCP:SSrEEr, /.test(f.detail)));
      }, { timeoutMs: 15000, what: 'iperf3\'s connections established on both nodes' });
      seen.forEach((l, k) => {
        t.true(l.length >= 4, `node${k + 1}: control and data connections, both directions`);
        for (const f of l) t.regex(f.detail, /Action:F, .*TCP:SSrEEr, /, `node${k + 1}: ${f.sip}:${f.sport} > ${f.dip}:${f.dport}`);
      });
      // node1's flows carry the tunnel's outer source port (UDP encapsulations).
      if (encap !== 'MPLSoGRE') t.true(seen[0].some((f) => /SPort:\d{5}/.test(f.detail)));
      t.is(await clDone, 0);
      srv.kill();
      const res = JSON.parse(json) as { end: { sum_received: { bytes: number } } };
      t.true(res.end.sum_received.bytes > 1e6, `the TCP transfer completed over ${encap} (${res.end.sum_received.bytes} bytes)`);
      const vif = n1.tool('vif', '--list').stdout;
      t.regex(vif, /vif0\/0 +OS: eth1/);
      t.regex(vif, /Type:Physical HWaddr:[0-9a-f:]+ IPaddr:b32a8c0/);
      t.regex(vif, /vif0\/1 +OS: vhost0\n +Type:Host/);
      // The tables: the tunnel to node2 valid once its MAC was learned, vm a's label, the VNI's VRF.
      const flagName = encap === 'VXLAN' ? 'Vxlan' : encap;
      t.regex(n1.tool('nh', '--list').stdout, new RegExp(`Type:Tunnel +Fmly: AF_INET  Flags:Valid, ${flagName}, .*\\n.*\\n\\tVrf:0  Sip:192\\.168\\.50\\.11  Dip:192\\.168\\.50\\.12`));
      t.regex(n1.tool('mpls', '--dump').stdout, /^ +16 +10$/m);
      t.regex(n1.tool('vxlan', '--dump').stdout, /^ +1 +9001$/m);
      t.regex(n1.tool('rt', '--dump', '1').stdout, encap === 'VXLAN' ? /^10\.1\.1\.4\/32 +32 +LP +1 +500\d +2:0:a:1:1:4$/m : /^10\.1\.1\.4\/32 +32 +LP +16 +500\d +-$/m);
    } finally {
      for (const i of nodes) t.is(await i.stop(), 0);
      for (const ns of u.nodes) {
        const links = spawnSync('ip', ['-n', ns, '-o', 'link'], { encoding: 'utf8' }).stdout;
        t.notRegex(links, /vhost0|tap[0-9a-f]{8}/, `${ns}: vhost0 and the TAPs are gone`);
        t.regex(spawnSync('ip', ['-n', ns, '-4', 'addr'], { encoding: 'utf8' }).stdout, /^(?![\s\S]*192\.168\.50)/, 'no fabric address left');
      }
      t.false(fs.existsSync(`/run/netns/${a}`) || fs.existsSync(`/run/netns/${b}`), 'the VMs\' namespaces are gone');
      u.down();
    }
  });
}

e2e({ root: true, tools: ['ip', 'bridge', 'ping', 'iperf3'] }).serial('the Linux kernel\'s VXLAN as a third VTEP: its host and a VM ping each other and move iperf3 streams both ways', async (t) => {
  t.timeout(180000);
  const p = 'ovk';
  const u = underlayUp(p, 2);
  const BMS_MAC = '02:00:0a:01:01:14';
  const v = vtepUp(p, u, {
    vni: 1, vtepCidr: '192.168.50.20/24', vtepIp: '192.168.50.20', nodeIps: ['192.168.50.11', '192.168.50.12'],
    hostCidr: '10.1.1.20/24', mac: BMS_MAC, gateway: '10.1.1.1',
    macs: [['02:00:0a:01:01:03', '192.168.50.11'], ['02:00:0a:01:01:04', '192.168.50.12']],
  });
  const topo = cluster(p, ['MPLSoUDP', 'MPLSoGRE', 'VXLAN'], {
    bare_metal: [{ name: 'bms1', vtep_ip: '192.168.50.20', ip: '10.1.1.20', network: 'demo', mac: BMS_MAC }],
  });
  let nodes: Instance[] = [];
  const a = `vm-${p}a`;
  try {
    nodes = await startNodes(topo, u.nodes);
    await waitFor(() => spawnSync('ip', ['netns', 'exec', a, 'ping', '-c', '1', '-W', '1', '10.1.1.20']).status === 0, { timeoutMs: 20000, what: 'the VM to reach the kernel VXLAN host' });
    const ping = spawnSync('ip', ['netns', 'exec', v.host, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '10.1.1.3'], { encoding: 'utf8' });
    t.is(ping.status, 0, `the host behind the kernel VTEP pings the VM: ${ping.stdout}${ping.stderr}`);
    const neigh = spawnSync('ip', ['-n', v.host, 'neigh', 'show', '10.1.1.3'], { encoding: 'utf8' }).stdout;
    t.regex(neigh, /lladdr 02:00:0a:01:01:03/, 'the vRouter answered the host\'s ARP with the VM\'s own MAC');
    const srv = spawn('ip', ['netns', 'exec', v.host, 'iperf3', '-s', '-1', '-p', '5202'], { stdio: 'ignore' });
    await waitListening(v.host, 5202);
    const cl = spawn('ip', ['netns', 'exec', a, 'iperf3', '-c', '10.1.1.20', '-t', '3', '-p', '5202', '-J'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const clDone = exited(cl);
    let json = '';
    cl.stdout.on('data', (d: Buffer) => (json += d.toString()));
    const tcp = () => parseFlowList(nodes[0].tool('flow', '-l').stdout).filter((f) => f.proto === 6 && (f.dport === 5202 || f.sport === 5202));
    await waitFor(() => { const l = tcp(); return l.length >= 4 && l.every((f) => /TCP:SSrEEr, /.test(f.detail)); }, { timeoutMs: 15000, what: 'the TCP connections to the bare-metal host established on node1' });
    t.is(await clDone, 0);
    srv.kill();
    const res = JSON.parse(json) as { end: { sum_received: { bytes: number } } };
    t.true(res.end.sum_received.bytes > 1e6, `iperf3 TCP VM → kernel-VXLAN host: ${res.end.sum_received.bytes} bytes`);
    // And the other way: the kernel VTEP sends TCP in VXLAN as GSO super-frames, which the fabric
    // switch must cut to wire size before the node (it was IF RX Discard, 70 KB moved).
    const srv2 = spawn('ip', ['netns', 'exec', a, 'iperf3', '-s', '-1', '-p', '5203'], { stdio: 'ignore' });
    await waitListening(a, 5203);
    const back = spawnSync('ip', ['netns', 'exec', v.host, 'iperf3', '-c', '10.1.1.3', '-t', '2', '-p', '5203', '-J'], { encoding: 'utf8', timeout: 30000 });
    srv2.kill();
    const res2 = JSON.parse(back.stdout) as { end: { sum_received: { bytes: number } } };
    t.true(res2.end.sum_received.bytes > 1e6, `iperf3 TCP kernel-VXLAN host → VM: ${res2.end.sum_received.bytes} bytes`);
    t.is(dropstat(nodes[0].tool('dropstats').stdout, 'IF RX Discard'), 0, 'no super-frame reached the node');
    t.is(dropstat(nodes[0].tool('dropstats').stdout, 'Invalid VNID'), 0);
  } finally {
    for (const i of nodes) t.is(await i.stop(), 0);
    v.down();
    u.down();
  }
});

/** Random and mutated frames to a MAC on a bridge port of `ns` (its eth1), through a raw socket. */
const FUZZ = `
import os, random, socket, struct, sys, time
dst = bytes.fromhex(sys.argv[1].replace(':', '')); n = int(sys.argv[2]); rnd = random.Random(int(sys.argv[3]))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('eth1', 0))
src = bytes.fromhex('02fe00000001')
def ip(proto, body, dip):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(body), 1, 0, 64, proto, 0, bytes([192,168,50,99]), dip)
    c = sum(struct.unpack('!10H', h)); c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
    return h[:10] + struct.pack('!H', ~c & 0xffff) + h[12:] + body
me = bytes([192,168,50,11])
sent = 0
for k in range(n):
    kind = rnd.randrange(6)
    if kind == 0:
        # Random after the addresses (a random source MAC would move the bridge's idea of other ports).
        f = dst + src + bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 80)))
    else:
        lbl = rnd.choice([16, 17, 1, 5000, 0xfffff])
        mpls = struct.pack('!I', (lbl << 12) | 0x100 | rnd.choice([64, 1, 0]))
        inner = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 60)))
        if kind == 1: body = ip(47, struct.pack('!HH', rnd.choice([0, 0x8000, 7]), rnd.choice([0x8847, 0x0800])) + mpls + inner, me)
        elif kind == 2: body = ip(17, struct.pack('!HHHH', 50000, 6635, 8 + 4 + len(inner), 0) + mpls + inner, me)
        elif kind == 3: body = ip(17, struct.pack('!HHHH', 50000, 4789, 16 + len(inner), 0) + struct.pack('!II', rnd.choice([0x08000000, 0]), rnd.choice([1, 2, 77]) << 8) + inner, me)
        elif kind == 4: body = ip(rnd.randrange(256), inner, me)
        else: body = ip(17, inner, me)[:rnd.randrange(14, 60)]
        f = dst + src + b'\\x08\\x00' + body
    if len(f) < 14: f = f + bytes(14 - len(f))
    s.send(f); sent += 1
    if k % 200 == 199: time.sleep(0.002)  # paced: a veth's backlog (netdev_max_backlog) drops bursts
print(sent)
`;

e2e({ root: true, tools: ['ip', 'ping', 'python3'] }).serial('garbage on the fabric: 20 000 random and mutated frames are counted, the node keeps forwarding', async (t) => {
  t.timeout(180000);
  const p = 'ovf';
  const u = underlayUp(p, 3); // the third node namespace sends the garbage
  const topo = cluster(p, ['MPLSoGRE']);
  let nodes: Instance[] = [];
  try {
    nodes = await startNodes(topo, u.nodes.slice(0, 2));
    const n1 = nodes[0];
    const mac = /vif0\/0 [^\n]*\n +Type:Physical HWaddr:([0-9a-f:]+)/.exec(n1.tool('vif', '--list').stdout)?.[1] as string;
    const rx = (): number => Number(/vif0\/0[\s\S]*?RX packets:(\d+)/.exec(n1.tool('vif', '--list').stdout)?.[1]);
    const dropsTotal = (): number => n1.tool('dropstats').stdout.split('\n').reduce((s, l) => s + (Number(/ (\d+)$/.exec(l)?.[1]) || 0), 0);
    // What the kernel received on node1's NIC (the frames that made it through the bridge).
    const kernelRx = (): number => (JSON.parse(spawnSync('ip', ['-n', u.nodes[0], '-s', '-j', 'link', 'show', 'eth1'], { encoding: 'utf8' }).stdout) as { stats64: { rx: { packets: number } } }[])[0].stats64.rx.packets;
    const rx0 = rx();
    const k0 = kernelRx();
    const d0 = dropsTotal();
    const f = spawnSync('ip', ['netns', 'exec', u.nodes[2], 'python3', '-c', FUZZ, mac, '20000', '7'], { encoding: 'utf8', timeout: 120000 });
    t.is(f.status, 0, f.stderr);
    t.is(Number(f.stdout.trim()), 20000);
    // The bridge forwards most of them (it refuses some malformed ones itself: about one in nine here).
    // Both counters from one sample, bracketed by two reads of the NIC's that agree: a frame the NIC takes
    // between the two reads (the underlay's own traffic) would otherwise be one the vif has not read yet.
    let nic = 0;
    let vif = 0;
    await waitFor(() => {
      nic = kernelRx() - k0;
      vif = rx() - rx0;
      return kernelRx() - k0 === nic && vif >= nic && nic >= 15000;
    }, { timeoutMs: 20000, what: 'node1 to have read the frames' });
    t.true(nic >= 15000, `the frames reached node1's NIC (${nic})`);
    t.is(vif, nic, 'vif0/0 read every frame its NIC received');
    t.true(dropsTotal() - d0 > 10000, 'most of them counted as drops under their labels');
    const ds = n1.tool('dropstats').stdout;
    for (const label of ['Invalid Label', 'Invalid VNID', 'Invalid Protocol', 'Pull Fails']) t.true(dropstat(ds, label) > 0, `${label} counted`);
    await waitFor(() => spawnSync('ip', ['netns', 'exec', `vm-${p}a`, 'ping', '-c', '1', '-W', '1', '10.1.1.4']).status === 0, { timeoutMs: 20000, what: 'the nodes to keep forwarding' });
    t.pass();
  } finally {
    for (const i of nodes) t.is(await i.stop(), 0);
    u.down();
  }
});

e2e({ root: true, tools: ['ip'] }).serial('start with a cluster topology: which node, and nodes that disagree, are one line with exit 2 and nothing created', async (t) => {
  const dir = fs.mkdtempSync('/tmp/vremu-ovbad-');
  const write = (name: string, o: object): string => {
    const f = `${dir}/${name}.json`;
    fs.writeFileSync(f, JSON.stringify(o));
    return f;
  };
  const good = cluster('ovx', ['MPLSoUDP']) as Record<string, unknown>;
  const nodes = good.nodes as Record<string, unknown>[];
  const cases: [string, string[], RegExp][] = [
    ['no --node', ['--topology', write('good', good)], /describes 2 compute nodes \(node1, node2\): say which this is with --node NAME/],
    ['unknown node', ['--topology', write('good', good), '--node', 'node9'], /--node node9: .* has no such node; its nodes are node1, node2/],
    ['--node without nodes', ['--topology', write('single', { networks: good.networks, vms: [{ name: 'ovxs', ip: '10.1.1.3', network: 'demo' }] }), '--node', 'node1'], /--node node1: .* has no "nodes"/],
    ['duplicate fabric IPs', ['--topology', write('dup', { ...good, nodes: [nodes[0], { ...nodes[1], fabric_ip: '192.168.50.11/24' }] }), '--node', 'node1'], /nodes\[1\]\.fabric_ip: /],
    ['unknown encapsulation', ['--topology', write('enc', { ...good, global_vrouter_config: { encapsulation_priorities: { encapsulation: ['MPLSoFOO'] } } }), '--node', 'node1'], /encapsulation_priorities.*MPLSoFOO/],
    ['VNI clash', ['--topology', write('vni', {
      ...good, networks: [{ name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1', vxlan_network_identifier: 7 }, { name: 'other', subnet: '10.1.2.0/24', gateway: '10.1.2.1', vxlan_network_identifier: 7 }],
      global_vrouter_config: { vxlan_network_identifier_mode: 'configured' },
    }), '--node', 'node1'], /networks\[1\]\.vxlan_network_identifier: .*VNI/],
  ];
  // In the root namespace, where there is no eth1 to be the fabric (the node belongs in its own namespace).
  const noNic = { ...good, nodes: [{ ...nodes[0], fabric_interface: 'vrenofab0' }, nodes[1]] };
  cases.push(['no fabric NIC', ['--topology', write('nonic', noNic), '--node', 'node1'], /node node1: fabric interface vrenofab0 does not exist here/]);
  // This test's names only: other work on the host may add namespaces meanwhile.
  const ours = (): string[] => fs.readdirSync('/run/netns').filter((n) => n.includes('ovx')).sort();
  const before = ours();
  for (const [what, args, msg] of cases) {
    const r = spawnSync(process.execPath, [BIN_PATH, 'start', ...args, '--socket', `${dir}/s.sock`], { encoding: 'utf8', timeout: 30000 });
    t.is(r.status, 2, `${what}: exit 2 (${r.stdout}${r.stderr})`);
    t.regex(r.stderr, msg, what);
    t.is(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
  }
  t.deepEqual(ours(), before, 'no namespace created');
  fs.rmSync(dir, { recursive: true, force: true });
});
