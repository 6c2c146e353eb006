/**
 * The pure parts of the testbed's OS side (src/io/cluster.ts): names, the demo topology, the plan of
 * what is created (namespaces, veth names, VNIs, fdb entries) and the commands that build it; and the
 * cluster topology reading and tool-socket resolution of the CLI (src/cli/testbed.ts, main.ts).
 */
import test from 'ava';
import { UserError } from '../../src/errors';
import {
  ClusterTopology, FABRIC_BRIDGE, checkNodeCount, checkPrefix, clusterPlan, demoClusterTopology, networkVni, nodeSocket, statePathFor,
  testbedDir, underlayCommands,
} from '../../src/io/cluster';
import { clusterTopologyFrom, testbedSocket } from '../../src/cli/testbed';
import { toolSocket } from '../../src/cli/main';
import { ipParse } from '../../src/lib/ipv4';
import type { BareMetalSpec, HostSpec, Network, NodeSpec } from '../../src/lib/topology-types';

function net(name: string, subnet: string, gw: string, vxlanId = 0): Network {
  const [a, len] = subnet.split('/');
  return {
    name, fqName: `default-domain:admin:${name}`, net: ipParse(a), prefixLen: Number(len), gateway: ipParse(gw), subnet, gatewayStr: gw,
    routerExternal: false, policies: [], vxlanId,
  };
}

function node(name: string, ip: string, len = 24, fabricInterface = 'eth1'): NodeSpec {
  return { name, fabricIp: ipParse(ip), fabricIpStr: ip, prefixLen: len, fabricInterface, encapsulations: ['MPLSoGRE', 'MPLSoUDP', 'VXLAN'] };
}

function vm(name: string, ip: string, network: string, nodeName: string, namespace?: string): HostSpec {
  const v = ipParse(ip);
  const mac = Uint8Array.from([2, 0, v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
  return {
    name, ip: v, ipStr: ip, mac, macStr: Array.from(mac, (x) => x.toString(16).padStart(2, '0')).join(':'), network, mtu: 1500, kind: 'netns',
    namespace: namespace ?? `vm-${name}`, nsExisting: namespace !== undefined, tap: 'tap00000000-00', node: nodeName,
  };
}

function bms(name: string, vtep: string, ip: string, network: string, mtu = 1450): BareMetalSpec {
  const v = ipParse(ip);
  const mac = Uint8Array.from([2, 0, v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
  return {
    name, ip: v, ipStr: ip, mac, macStr: Array.from(mac, (x) => x.toString(16).padStart(2, '0')).join(':'), network, mtu,
    namespace: `bms-${name}`, vtepNamespace: `vtep-${name}`, vtepIp: ipParse(vtep), vtepIpStr: vtep,
  };
}

function topo(over: Partial<ClusterTopology> = {}): ClusterTopology {
  return {
    networks: [net('red', '10.2.0.0/24', '10.2.0.1', 7), net('blue', '10.3.0.0/24', '10.3.0.1', 5000)],
    nodes: [node('node1', '192.168.50.11'), node('node2', '192.168.50.12')],
    vms: [vm('a', '10.3.0.3', 'blue', 'node1'), vm('b', '10.3.0.4', 'blue', 'node2'), vm('c', '10.2.0.3', 'red', 'node2', 'my-ns')],
    bareMetal: [bms('bm1', '192.168.50.21', '10.3.0.10', 'blue')],
    global: { vxlanMode: 'automatic' },
    ...over,
  };
}

const userError = { instanceOf: UserError };

test('prefix: 1 to 5 letters or digits; node count 1 to 8', (t) => {
  for (const p of ['vre', 'a', 'vrt12', 'X9']) t.notThrows(() => checkPrefix(p));
  for (const p of ['', 'toolong', 'a-b', 'a b', 'é']) t.throws(() => checkPrefix(p), { ...userError, message: /--prefix .*: expected 1 to 5 letters or digits/ });
  t.is(checkNodeCount('1'), 1);
  t.is(checkNodeCount('8'), 8);
  for (const n of ['0', '9', '-1', 'two', '2.5', '']) t.throws(() => checkNodeCount(n), { ...userError, message: /^--nodes .*: expected a number of compute nodes from 1 to 8$/ });
});

test('the run directory, sockets and state file are per prefix', (t) => {
  t.is(testbedDir('vre'), '/run/vrouter-emu/testbed-vre');
  t.is(nodeSocket('vrt2', 'node1'), '/run/vrouter-emu/testbed-vrt2/node1.sock');
  t.is(statePathFor('vrt2'), '/run/vrouter-emu/testbeds/vrt2.json');
});

test('the demo topology: N nodes on 192.168.50.0/24, one VM per node in namespace P-vmI, and it parses', (t) => {
  const raw = demoClusterTopology(3, 'vre') as { nodes: unknown[]; vms: unknown[]; networks: unknown[] };
  t.deepEqual(raw.nodes, [
    { name: 'node1', fabric_ip: '192.168.50.11/24' }, { name: 'node2', fabric_ip: '192.168.50.12/24' }, { name: 'node3', fabric_ip: '192.168.50.13/24' },
  ]);
  t.deepEqual(raw.networks, [{ name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1' }]);
  t.deepEqual(raw.vms[0], { name: 'vm1', ip: '10.1.1.3', network: 'demo', node: 'node1', namespace: 'vre-vm1' });
  t.deepEqual(raw.vms[2], { name: 'vm3', ip: '10.1.1.5', network: 'demo', node: 'node3', namespace: 'vre-vm3' });
  const tp = clusterTopologyFrom(raw, '(demo)');
  t.deepEqual(tp.nodes.map((n) => [n.name, n.fabricIpStr, n.prefixLen, n.fabricInterface]), [
    ['node1', '192.168.50.11', 24, 'eth1'], ['node2', '192.168.50.12', 24, 'eth1'], ['node3', '192.168.50.13', 24, 'eth1'],
  ]);
  const plan = clusterPlan(tp, 'vre', '(demo)');
  t.deepEqual(plan.namespaces, ['vre-fabric', 'vre-node1', 'vre-node2', 'vre-node3', 'vre-vm1', 'vre-vm2', 'vre-vm3']);
  t.deepEqual(plan.nodeVmNamespaces, []);
  t.deepEqual(plan.nodes.map((n) => n.vms.map((v) => `${v.name}@${v.namespace}/${v.owner}`)), [['vm1@vre-vm1/testbed'], ['vm2@vre-vm2/testbed'], ['vm3@vre-vm3/testbed']]);
  t.deepEqual(plan.vteps, []);
});

test('the plan: namespaces, veth names, sockets, VNIs and fdb entries', (t) => {
  const plan = clusterPlan(topo(), 'vrt1', 'topo.json');
  t.is(plan.fabricNs, 'vrt1-fabric');
  t.is(plan.fabricSubnet, '192.168.50.0/24');
  t.deepEqual(plan.nodes.map((n) => [n.name, n.ns, n.port, n.fabricIf, n.fabricIp, n.socket, n.log]), [
    ['node1', 'vrt1-node1', 'n-node1', 'eth1', '192.168.50.11', '/run/vrouter-emu/testbed-vrt1/node1.sock', '/run/vrouter-emu/testbed-vrt1/node1.log'],
    ['node2', 'vrt1-node2', 'n-node2', 'eth1', '192.168.50.12', '/run/vrouter-emu/testbed-vrt1/node2.sock', '/run/vrouter-emu/testbed-vrt1/node2.log'],
  ]);
  // my-ns is named by the topology: the testbed makes it; vm-a and vm-b are the nodes'.
  t.deepEqual(plan.namespaces, ['vrt1-fabric', 'vrt1-node1', 'vrt1-node2', 'vtep-bm1', 'bms-bm1', 'my-ns']);
  t.deepEqual(plan.nodeVmNamespaces, ['vm-a', 'vm-b']);
  const [v] = plan.vteps;
  t.like(v, { port: 'bm1', vtepNs: 'vtep-bm1', hostNs: 'bms-bm1', vtepIp: '192.168.50.21', prefixLen: 24, vni: 2, vxlanDev: 'vxlan2', ip: '10.3.0.10', hostPrefixLen: 24, gateway: '10.3.0.1', mtu: 1450 });
  // BUM to every node; each VM of blue to its node (c is in red: not here).
  t.deepEqual(v.fdb, [
    { mac: '00:00:00:00:00:00', dst: '192.168.50.11' },
    { mac: '00:00:00:00:00:00', dst: '192.168.50.12' },
    { mac: '02:00:0a:03:00:03', dst: '192.168.50.11' },
    { mac: '02:00:0a:03:00:04', dst: '192.168.50.12' },
  ]);
});

test('VNIs: automatic = network position + 1, configured = vxlan_network_identifier', (t) => {
  const a = topo();
  t.deepEqual(a.networks.map((n) => networkVni(a, n)), [1, 2]);
  const c = topo({ global: { vxlanMode: 'configured' } });
  t.deepEqual(c.networks.map((n) => networkVni(c, n)), [7, 5000]);
  const plan = clusterPlan(c, 'vrt1', 'topo.json');
  t.is(plan.vteps[0].vxlanDev, 'vxlan5000');
  const none = topo({ global: { vxlanMode: 'configured' }, networks: [net('red', '10.2.0.0/24', '10.2.0.1'), net('blue', '10.3.0.0/24', '10.3.0.1')] });
  t.throws(() => clusterPlan(none, 'vrt1', 'topo.json'), { ...userError, message: /^topo\.json: networks\[1\]\.vxlan_network_identifier: network blue has no VNI \(0\); .*configured/ });
});

test('every interface name of the commands fits 15 bytes, for the longest prefix, node names and VNI', (t) => {
  const nodes = Array.from({ length: 8 }, (_, i) => node(`abcdefg${i}`, `10.250.0.${11 + i}`, 16, 'fabric-iface-15'));
  const big = topo({
    nodes,
    networks: [net('blue', '10.3.0.0/24', '10.3.0.1', 16777215)],
    global: { vxlanMode: 'configured' },
    vms: [vm('a', '10.3.0.3', 'blue', 'abcdefg0')],
    bareMetal: Array.from({ length: 64 }, (_, i) => bms(`b${i}`, `10.250.1.${i + 1}`, `10.3.0.${100 + i}`, 'blue')),
  });
  const plan = clusterPlan(big, 'vrt12', 'big.json');
  const cmds = underlayCommands(plan);
  const names: string[] = [];
  for (const { argv } of cmds) {
    argv.forEach((a, i) => {
      if (['name', 'dev', 'master'].includes(argv[i - 1]) || (argv[i - 1] === 'add' && argv[i - 2] === 'link')) names.push(a);
      if (argv[i - 1] === 'set' && argv[i - 2] === 'link') names.push(a);
    });
  }
  t.true(names.includes('n-abcdefg7'));
  t.true(names.includes('bm64'));
  t.true(names.includes('vxlan16777215'));
  t.true(names.includes('fabric-iface-15'));
  for (const n of names) t.true(Buffer.byteLength(n) <= 15, `${n} fits IFNAMSIZ`);
  t.is(cmds[0].argv.join(' '), 'ip netns add vrt12-fabric');
});

test('the commands: the bridge, the veths with both ends in namespaces, the VTEP and its host', (t) => {
  const plan = clusterPlan(topo(), 'vrt1', 'topo.json');
  const lines = underlayCommands(plan).map((c) => c.argv.join(' '));
  t.true(lines.includes(`ip -n vrt1-fabric link add ${FABRIC_BRIDGE} type bridge`));
  t.true(lines.includes('ip link add name n-node1 netns vrt1-fabric mtu 1500 type veth peer name eth1 netns vrt1-node1 mtu 1500'));
  t.true(lines.includes('ip -n vrt1-fabric link set n-node1 master br-fabric up'));
  t.true(lines.includes('ip -n vrt1-fabric link set dev n-node1 gso_max_segs 1'), 'the switch port passes wire-size frames only');
  t.true(lines.includes('ip netns exec vrt1-node1 sysctl -q -w net.ipv6.conf.eth1.disable_ipv6=1'));
  t.true(lines.includes('ip -n vrt1-node1 link set eth1 up'));
  t.false(lines.some((l) => /^ip -n vrt1-node\d addr/.test(l)), 'no address on a node\'s fabric interface');
  t.true(lines.includes('ip -n vtep-bm1 addr add 192.168.50.21/24 dev eth1'));
  t.true(lines.includes('ip -n vtep-bm1 link add vxlan2 mtu 1450 type vxlan id 2 local 192.168.50.21 dstport 4789 nolearning'));
  t.true(lines.includes('bridge -n vtep-bm1 fdb append 00:00:00:00:00:00 dev vxlan2 dst 192.168.50.12'));
  t.true(lines.includes('bridge -n vtep-bm1 fdb append 02:00:0a:03:00:04 dev vxlan2 dst 192.168.50.12'));
  t.true(lines.includes('ip -n bms-bm1 link set eth0 address 02:00:0a:03:00:0a up'));
  t.true(lines.includes('ip -n bms-bm1 addr add 10.3.0.10/24 dev eth0'));
  t.true(lines.includes('ip -n bms-bm1 route add default via 10.3.0.1'));
  // Namespaces come first: each command that creates one is marked, so that it is recorded.
  t.deepEqual(underlayCommands(plan).filter((c) => c.ns).map((c) => c.ns), ['vrt1-fabric', 'vrt1-node1', 'vrt1-node2', 'vtep-bm1', 'bms-bm1']);
});

test('the plan refuses what one host cannot build, one line naming the field', (t) => {
  const cases: [Partial<ClusterTopology>, RegExp][] = [
    [{ nodes: [] }, /^t: nodes: the topology has no compute nodes/],
    [{ nodes: Array.from({ length: 9 }, (_, i) => node(`n${i}`, `192.168.50.${11 + i}`)) }, /^t: nodes: 9 nodes: a testbed runs at most 8/],
    [{ nodes: [node('compute01', '192.168.50.11')] }, /^t: nodes\[0\]\.name: "compute01": a testbed's node names are at most 8 .*shorten it$/],
    [{ nodes: [node('node1', '192.168.50.11'), node('node2', '192.168.51.12')] }, /^t: nodes\[1\]\.fabric_ip: 192\.168\.51\.12\/24 is not in the fabric subnet 192\.168\.50\.0\/24/],
    [{ nodes: [node('node1', '192.168.50.11'), node('node2', '192.168.50.11')] }, /^t: nodes\[1\]\.fabric_ip: 192\.168\.50\.11 is also node node1's$/],
    [{ nodes: [node('node1', '192.168.50.11', 24, 'vhost0')] }, /^t: nodes\[0\]\.fabric_interface: "vhost0"/],
    [{ vms: [vm('a', '10.3.0.3', 'blue', 'node9')] }, /^t: vms\[0\]\.node: "node9": name the compute node VM a runs on \(node1, node2\)$/],
    [{ vms: [vm('a', '10.3.0.3', 'blue', '')] }, /^t: vms\[0\]\.node: missing/],
    [{ bareMetal: [bms('x', '192.168.60.21', '10.3.0.10', 'blue')] }, /^t: bare_metal\[0\]\.vtep_ip: 192\.168\.60\.21 is not in the fabric subnet/],
    [{ bareMetal: [bms('x', '192.168.50.12', '10.3.0.10', 'blue')] }, /^t: bare_metal\[0\]\.vtep_ip: 192\.168\.50\.12 is also node node2's$/],
    [{ vms: [vm('a', '10.3.0.3', 'blue', 'node1', 'bms-bm1')] }, /^t: \(namespaces\): namespace bms-bm1 would be used twice/],
  ];
  for (const [over, re] of cases) t.throws(() => clusterPlan(topo(over), 'vrt1', 't'), { ...userError, message: re });
  t.throws(() => clusterPlan(topo(), 'bad-prefix', 't'), { ...userError, message: /--prefix/ });
});

test('a cluster topology file: nodes, bare_metal, node, vxlan_network_identifier with their defaults', (t) => {
  const tp = clusterTopologyFrom({
    nodes: [{ name: 'n1', fabric_ip: '192.168.60.11/24' }, { name: 'n2', fabric_ip: '192.168.60.12/24', fabric_interface: 'ens4', encapsulations: ['VXLAN'] }],
    networks: [{ name: 'blue', subnet: '10.60.1.0/24', gateway: '10.60.1.1', vxlan_network_identifier: 4242 }],
    vms: [{ name: 'a', ip: '10.60.1.3', network: 'blue', node: 'n1' }],
    bare_metal: [{ name: 'bm', vtep_ip: '192.168.60.21', ip: '10.60.1.10', network: 'blue' }, { name: 'bm2', vtep_ip: '192.168.60.22', ip: '10.60.1.11', network: 'blue', mtu: 1400, namespace: 'h2', vtep_namespace: 'v2', mac: '02:aa:00:00:00:01' }],
    global_vrouter_config: { vxlan_network_identifier_mode: 'configured' },
  }, 'c.json');
  t.deepEqual(tp.nodes.map((n) => [n.name, n.fabricIpStr, n.prefixLen, n.fabricInterface]), [['n1', '192.168.60.11', 24, 'eth1'], ['n2', '192.168.60.12', 24, 'ens4']]);
  t.is(tp.vms[0].node, 'n1');
  t.is(tp.networks[0].vxlanId, 4242);
  t.is(tp.global.vxlanMode, 'configured');
  t.like(tp.bareMetal[0], { namespace: 'bms-bm', vtepNamespace: 'vtep-bm', vtepIpStr: '192.168.60.21', macStr: '02:00:0a:3c:01:0a' });
  t.like(tp.bareMetal[1], { namespace: 'h2', vtepNamespace: 'v2', macStr: '02:aa:00:00:00:01', mtu: 1400 });
  // mtu: given → as given; not given → 1450 (VXLAN over the 1500-byte fabric).
  t.is(tp.bareMetal[0].mtu, 1450);
  const plan = clusterPlan(tp, 'vrt1', 'c.json');
  t.is(plan.vteps[0].vxlanDev, 'vxlan4242');
  t.is(plan.nodes[1].fabricIf, 'ens4');
});

test('tools: --node NAME [--testbed P] names a testbed node\'s socket; errors name the fix', (t) => {
  t.deepEqual(toolSocket(['-l']), { socket: '/run/vrouter-emu/vrouter.sock', args: ['-l'] });
  t.deepEqual(toolSocket(['-l', '--socket', '/tmp/x.sock']), { socket: '/tmp/x.sock', args: ['-l'] });
  t.deepEqual(toolSocket(['--socket=/tmp/y.sock', '--list']), { socket: '/tmp/y.sock', args: ['--list'] });
  t.throws(() => toolSocket(['--node', 'node1', '--socket', '/tmp/x']), { ...userError, message: /not both/ });
  t.throws(() => toolSocket(['--testbed', 'vrt2']), { ...userError, message: /name the node too/ });
  t.throws(() => toolSocket(['--node']), { ...userError, message: /--node needs a value/ });
  // A testbed prefix no run uses: it says there is none, and how to start one.
  t.throws(() => testbedSocket('node1', 'zz9q'), { ...userError, message: /^no testbed zz9q is running \(no \/run\/vrouter-emu\/testbed-zz9q\); start one with: sudo vrouter-emu testbed --prefix zz9q/ });
  t.throws(() => testbedSocket('node1', 'bad-prefix'), { ...userError, message: /--prefix/ });
});
