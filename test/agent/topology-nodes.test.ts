/**
 * The cluster part of the topology: `nodes`, each host's `node`, networks' vxlan_network_identifier and
 * vxlan_network_identifier_mode, `bare_metal`, encapsulation_priorities, and agent.conf's tunnel_type.
 * Every bad value is one UserError line naming the file and the field.
 */
import test, { type ExecutionContext } from 'ava';
import { checkVniMode, ipParse, topologyFrom } from '../../src/agent/topology';
import { parseGlobalVrouterConfig } from '../../src/agent/contrail-config';
import { parseAgentConf } from '../../src/agent/agent-conf';
import { ComputeNode } from '../../src/agent/compute-node';
import { userErrorOf } from '../helpers/user-error';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The topology of the issue: two nodes, one network with a VNI, a VM on each node, a bare-metal host. */
const cluster = (): Obj => ({
  nodes: [
    { name: 'node1', fabric_ip: '192.168.50.11/24', fabric_interface: 'eth1', encapsulations: ['MPLSoUDP', 'MPLSoGRE', 'VXLAN'] },
    { name: 'node2', fabric_ip: '192.168.50.12/24' },
  ],
  networks: [
    { name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1', vxlan_network_identifier: 5001 },
    { name: 'public', subnet: '203.0.113.0/24', gateway: '203.0.113.1', router_external: true, vxlan_network_identifier: 5002, outside: { namespace: 'outside', ip: '203.0.113.254' } },
  ],
  vms: [
    { name: 'vm1', ip: '10.1.1.3', network: 'demo', node: 'node1', floating_ips: ['203.0.113.10'] },
    { name: 'vm2', ip: '10.1.1.4', network: 'demo', node: 'node2' },
  ],
  bare_metal: [
    { name: 'bms1', vtep_ip: '192.168.50.20', ip: '10.1.1.20', network: 'demo', mac: '02:00:0a:01:01:14', namespace: 'bms-bms1', vtep_namespace: 'vtep-bms1', mtu: 1500 },
  ],
  global_vrouter_config: {
    encapsulation_priorities: { encapsulation: ['MPLSoUDP', 'MPLSoGRE', 'VXLAN'] },
    vxlan_network_identifier_mode: 'configured',
  },
});

const single = (): Obj => ({
  networks: [{ name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1' }],
  vms: [{ name: 'vm1', ip: '10.1.1.3', network: 'demo' }],
});

/** `raw` is refused with one line naming topo.json and `field` (and matching `more`). */
function refused(t: ExecutionContext, raw: unknown, field: string, more?: RegExp): void {
  const msg = userErrorOf(() => topologyFrom(raw, 'topo.json'));
  t.true(msg.startsWith(`topo.json: ${field}: `), `expected an error naming ${field}, got: ${msg || '(none)'}`);
  t.false(/[\r\n]/.test(msg));
  if (more) t.regex(msg, more);
}

test('a two-node topology parses into nodes, hosts on their nodes, VNIs and bare-metal hosts', (t) => {
  const topo = topologyFrom(cluster(), 'topo.json');
  t.deepEqual(topo.nodes, [
    { name: 'node1', fabricIp: ipParse('192.168.50.11'), fabricIpStr: '192.168.50.11', prefixLen: 24, fabricInterface: 'eth1', encapsulations: ['MPLSoUDP', 'MPLSoGRE', 'VXLAN'] },
    { name: 'node2', fabricIp: ipParse('192.168.50.12'), fabricIpStr: '192.168.50.12', prefixLen: 24, fabricInterface: 'eth1', encapsulations: ['MPLSoGRE', 'MPLSoUDP', 'VXLAN'] },
  ]);
  t.deepEqual(topo.vms.map((v) => [v.name, v.node]), [['vm1', 'node1'], ['vm2', 'node2']]);
  t.deepEqual(topo.outside.map((h) => [h.name, h.node]), [['public-outside', 'node1']], 'an outside host is on the first node unless told');
  t.deepEqual(topo.networks.map((n) => n.vxlanId), [5001, 5002]);
  t.deepEqual(topo.bareMetal, [{
    name: 'bms1', ip: ipParse('10.1.1.20'), ipStr: '10.1.1.20', mac: Uint8Array.from([2, 0, 10, 1, 1, 20]), macStr: '02:00:0a:01:01:14',
    network: 'demo', mtu: 1500, namespace: 'bms-bms1', vtepNamespace: 'vtep-bms1', vtepIp: ipParse('192.168.50.20'), vtepIpStr: '192.168.50.20',
  }]);
  t.deepEqual(topo.global.encapsulationPriorities, ['MPLSoUDP', 'MPLSoGRE', 'VXLAN']);
  t.is(topo.global.vxlanMode, 'configured');
});

test('defaults: bare-metal MAC, MTU and namespaces; the only node; an outside host on a named node', (t) => {
  const c = cluster();
  c.nodes = [c.nodes[0]];
  c.vms = [{ name: 'vm1', ip: '10.1.1.3', network: 'demo' }];
  c.networks[1].outside.node = 'node1';
  c.bare_metal = [{ name: 'b', vtep_ip: '192.168.50.21', ip: '10.1.1.21', network: 'demo' }];
  const topo = topologyFrom(c, 'topo.json');
  t.is(topo.vms[0].node, 'node1');
  t.is(topo.outside[0].node, 'node1');
  const b = topo.bareMetal[0];
  t.deepEqual([b.macStr, b.mtu, b.namespace, b.vtepNamespace], ['02:00:0a:01:01:15', 1500, 'bms-b', 'vtep-b']);
});

test('without nodes: one node as before, VNIs still read, automatic mode', (t) => {
  const s = single();
  s.networks[0].vxlan_network_identifier = 7;
  const topo = topologyFrom(s, 'topo.json');
  t.deepEqual(topo.nodes, []);
  t.deepEqual(topo.bareMetal, []);
  t.is(topo.vms[0].node, '');
  t.is(topo.networks[0].vxlanId, 7);
  t.is(topologyFrom(single(), 'topo.json').networks[0].vxlanId, 0);
  t.is(topo.global.vxlanMode, 'automatic');
  t.deepEqual(topo.global.encapsulationPriorities, ['MPLSoUDP', 'MPLSoGRE', 'VXLAN']);
});

test('qemu guests and attached interfaces stay allowed in a cluster', (t) => {
  const c = cluster();
  c.vms.push({ name: 'g1', ip: '10.1.1.5', network: 'demo', kind: 'qemu', node: 'node2' }, { name: 'lv', ip: '10.1.1.6', network: 'demo', attach: 'vnet0', node: 'node1' });
  const topo = topologyFrom(c, 'topo.json');
  t.deepEqual(topo.vms.map((v) => [v.kind, v.node]), [['netns', 'node1'], ['netns', 'node2'], ['qemu', 'node2'], ['attach', 'node1']]);
});

test('nodes: the list, names, keys, interfaces', (t) => {
  refused(t, { ...cluster(), nodes: [] }, 'nodes', /non-empty/);
  refused(t, { ...cluster(), nodes: {} }, 'nodes');
  const many = Array.from({ length: 65 }, (_, i) => ({ name: `n${i}`, fabric_ip: `192.168.50.${i + 10}/24` }));
  refused(t, { ...cluster(), nodes: many, vms: [] }, 'nodes', /at most 64/);
  const c = cluster();
  c.nodes[1].name = 'node1';
  refused(t, c, 'nodes[1].name', /also nodes\[0\]/);
  refused(t, { ...cluster(), nodes: [{ name: 'bad name', fabric_ip: '192.168.50.11/24' }] }, 'nodes[0].name');
  refused(t, { ...cluster(), nodes: [{ name: 'n', fabric_ip: '192.168.50.11/24', x: 1 }] }, 'nodes[0].x', /unknown key/);
  refused(t, { ...cluster(), nodes: [{ name: 'n', fabric_ip: '192.168.50.11/24', fabric_interface: 'a/b' }] }, 'nodes[0].fabric_interface');
  refused(t, { ...cluster(), nodes: ['node1'] }, 'nodes[0]');
});

test('nodes: fabric addresses (duplicates, prefix, host address, one subnet)', (t) => {
  const dup = cluster();
  dup.nodes[1].fabric_ip = '192.168.50.11/24';
  refused(t, dup, 'nodes[1].fabric_ip', /^topo\.json: nodes\[1\]\.fabric_ip: 192\.168\.50\.11 is also nodes\[0\] \(node1\); give each node its own fabric address$/);
  const other = cluster();
  other.nodes[1].fabric_ip = '192.168.51.12/24';
  refused(t, other, 'nodes[1].fabric_ip', /not on the fabric subnet 192\.168\.50\.0\/24 of nodes\[0\] \(node1\); the emulator's fabric is one L2 segment/);
  const len = cluster();
  len.nodes[1].fabric_ip = '192.168.50.12/25';
  refused(t, len, 'nodes[1].fabric_ip', /one L2 segment/);
  for (const bad of ['192.168.50.11', '192.168.50.11/32', '192.168.50.11/7', '300.1.1.1/24', 5]) {
    refused(t, { ...cluster(), nodes: [{ name: 'n', fabric_ip: bad }] }, 'nodes[0].fabric_ip');
  }
  refused(t, { ...cluster(), nodes: [{ name: 'n', fabric_ip: '192.168.50.0/24' }] }, 'nodes[0].fabric_ip', /not a host address/);
  refused(t, { ...cluster(), nodes: [{ name: 'n', fabric_ip: '192.168.50.255/24' }] }, 'nodes[0].fabric_ip', /not a host address/);
});

test('nodes: encapsulations', (t) => {
  const c = cluster();
  c.nodes[0].encapsulations = ['MPLSoUDP', 'GRE'];
  refused(t, c, 'nodes[0].encapsulations[1]', /"GRE" is not an encapsulation; the encapsulations are MPLSoGRE, MPLSoUDP, VXLAN/);
  c.nodes[0].encapsulations = ['vxlan'];
  refused(t, c, 'nodes[0].encapsulations[0]', /"vxlan" is not an encapsulation/);
  c.nodes[0].encapsulations = ['VXLAN', 'VXLAN'];
  refused(t, c, 'nodes[0].encapsulations[1]', /given twice/);
  c.nodes[0].encapsulations = [];
  refused(t, c, 'nodes[0].encapsulations', /non-empty/);
  c.nodes[0].encapsulations = 'VXLAN';
  refused(t, c, 'nodes[0].encapsulations');
  c.nodes[0].encapsulations = ['VXLAN'];
  t.deepEqual(topologyFrom(c, 'topo.json').nodes[0].encapsulations, ['VXLAN']);
});

test('hosts on nodes: missing, unknown, node without nodes, a VM on two nodes', (t) => {
  const c = cluster();
  delete c.vms[1].node;
  refused(t, c, 'vms[1].node', /missing: the topology has 2 nodes \(node1, node2\)/);
  c.vms[1].node = 'node3';
  refused(t, c, 'vms[1].node', /"node3" is not one of the nodes \(node1, node2\)/);
  c.vms[1].node = 5;
  refused(t, c, 'vms[1].node');
  const s = single();
  s.vms[0].node = 'node1';
  refused(t, s, 'vms[0].node', /add a nodes list or remove node/);
  const o = cluster();
  o.networks[1].outside.node = 'nope';
  refused(t, o, 'networks[1].outside.node', /not one of the nodes/);
  const twice = cluster();
  twice.vms[1] = { ...twice.vms[0], ip: '10.1.1.4', floating_ips: undefined, node: 'node2' };
  refused(t, twice, 'vms[1].name', /defined twice.*a VM runs on one node/);
  const ns = cluster();
  ns.vms[1].namespace = 'shared';
  ns.vms[0].namespace = 'shared';
  refused(t, ns, 'vms[1].namespace', /used twice/);
});

test('vxlan_network_identifier: range, configured mode needs one per network and no clash', (t) => {
  for (const bad of [0, -1, 16777216, 1.5, '5001', null]) {
    const c = cluster();
    c.networks[0].vxlan_network_identifier = bad;
    refused(t, c, 'networks[0].vxlan_network_identifier', /1 to 16777215/);
  }
  const edge = cluster();
  edge.networks[0].vxlan_network_identifier = 16777215;
  edge.networks[1].vxlan_network_identifier = 1;
  t.deepEqual(topologyFrom(edge, 'topo.json').networks.map((n) => n.vxlanId), [16777215, 1]);

  const clash = cluster();
  clash.networks[1].vxlan_network_identifier = 5001;
  refused(t, clash, 'networks[1].vxlan_network_identifier',
    /^topo\.json: networks\[1\]\.vxlan_network_identifier: VNI clash: networks\[1\]\.vxlan_network_identifier 5001 is also networks\[0\] \(demo\); give each network its own$/);
  const missing = cluster();
  delete missing.networks[1].vxlan_network_identifier;
  refused(t, missing, 'networks[1].vxlan_network_identifier', /missing: vxlan_network_identifier_mode is "configured"/);
  const bms = cluster();
  delete bms.networks[0].vxlan_network_identifier;
  refused(t, bms, 'bare_metal[0].network', /reached by VXLAN/);

  // Automatic: the values are accepted and ignored (a clash, a missing one).
  for (const mode of [undefined, 'automatic', 'Configured']) {
    const a = cluster();
    a.global_vrouter_config.vxlan_network_identifier_mode = mode;
    a.networks[1].vxlan_network_identifier = 5001;
    delete a.networks[0].vxlan_network_identifier;
    const topo = topologyFrom(a, 'topo.json');
    t.is(topo.global.vxlanMode, 'automatic');
    t.is(topo.notes.length, mode === 'Configured' ? 1 : 0);
  }
  // Configured without nodes: no VNI is needed, a clash is still one.
  const s: Obj = { ...single(), global_vrouter_config: { vxlan_network_identifier_mode: 'configured' } };
  t.is(topologyFrom(s, 'topo.json').networks[0].vxlanId, 0);
  const two = { ...s, networks: [{ ...s.networks[0], vxlan_network_identifier: 9 }, { name: 'b', subnet: '10.1.2.0/24', gateway: '10.1.2.1', vxlan_network_identifier: 9 }] };
  refused(t, two, 'networks[1].vxlan_network_identifier', /VNI clash/);
});

test('checkVniMode after the global config is replaced (--global-config)', (t) => {
  const c = cluster();
  delete c.global_vrouter_config;
  c.networks[1].vxlan_network_identifier = 5001;
  const topo = topologyFrom(c, 'topo.json');
  t.notThrows(() => checkVniMode(topo, 'topo.json'));
  topo.global = parseGlobalVrouterConfig({ vxlan_network_identifier_mode: 'configured' }, 'g.json', 'global-vrouter-config');
  const msg = userErrorOf(() => checkVniMode(topo, 'topo.json'));
  t.true(msg.startsWith('topo.json: networks[1].vxlan_network_identifier: VNI clash'), msg);
});

test('bare_metal: needs nodes; names, addresses, MACs, namespaces, VTEPs', (t) => {
  const s = { ...single(), bare_metal: [{ name: 'b', vtep_ip: '192.168.50.20', ip: '10.1.1.20', network: 'demo' }] };
  refused(t, s, 'bare_metal', /add a nodes list or remove bare_metal/);
  const bm = (over: Obj): Obj => {
    const c = cluster();
    c.bare_metal.push({ name: 'bms2', vtep_ip: '192.168.50.21', ip: '10.1.1.21', network: 'demo', ...over });
    return c;
  };
  t.is(topologyFrom(bm({}), 'topo.json').bareMetal.length, 2);
  refused(t, bm({ ip: '10.1.1.3' }), 'bare_metal[1].ip', /10\.1\.1\.3 is also vms\[0\]/);
  refused(t, bm({ ip: '10.1.1.20' }), 'bare_metal[1].ip', /also bare_metal\[0\]/);
  refused(t, bm({ ip: '10.1.1.1' }), 'bare_metal[1].ip', /gateway/);
  refused(t, bm({ ip: '10.1.2.1' }), 'bare_metal[1].ip', /not a host address of demo/);
  refused(t, bm({ network: 'public', ip: '203.0.113.10' }), 'bare_metal[1].ip', /also vms\[0\]\.floating_ips\[0\]/);
  refused(t, bm({ network: 'nope' }), 'bare_metal[1].network', /not one of the networks/);
  refused(t, bm({ name: 'vm1' }), 'bare_metal[1].name', /also vms\[0\]/);
  refused(t, bm({ name: 'bms1' }), 'bare_metal[1].name', /also bare_metal\[0\]/);
  refused(t, bm({ mac: '02:00:0a:01:01:03' }), 'bare_metal[1].mac', /vm1/);
  refused(t, bm({ mac: '02:00:0a:01:01:14' }), 'bare_metal[1].mac', /bms1/);
  refused(t, bm({ mac: '00:00:5e:00:01:00' }), 'bare_metal[1].mac', /vRouter MAC/);
  refused(t, bm({ mtu: 9001 }), 'bare_metal[1].mtu');
  refused(t, bm({ namespace: 'vm-vm1' }), 'bare_metal[1].namespace', /vm1/);
  refused(t, bm({ namespace: 'vtep-bms1' }), 'bare_metal[1].namespace', /bms1's VTEP/);
  refused(t, bm({ vtep_namespace: 'outside' }), 'bare_metal[1].vtep_namespace');
  refused(t, bm({ vtep_namespace: 'bms-bms2' }), 'bare_metal[1].vtep_namespace', /also bms2/);
  refused(t, bm({ namespace: 'a/b' }), 'bare_metal[1].namespace');
  refused(t, bm({ vtep_ip: '192.168.50.12' }), 'bare_metal[1].vtep_ip', /nodes\[1\] \(node2\)/);
  refused(t, bm({ vtep_ip: '192.168.50.20' }), 'bare_metal[1].vtep_ip', /bare_metal\[0\] \(bms1\)/);
  refused(t, bm({ vtep_ip: '192.168.51.20' }), 'bare_metal[1].vtep_ip', /fabric subnet 192\.168\.50\.0\/24/);
  refused(t, bm({ vtep_ip: '192.168.50.255' }), 'bare_metal[1].vtep_ip', /fabric subnet/);
  refused(t, bm({ x: 1 }), 'bare_metal[1].x', /unknown key/);
  refused(t, { ...cluster(), bare_metal: {} }, 'bare_metal');
});

test('global-vrouter-config: encapsulation_priorities and vxlan_network_identifier_mode', (t) => {
  const g = (v: unknown) => parseGlobalVrouterConfig(v, 'g.json', 'global-vrouter-config');
  t.deepEqual(g({ encapsulation_priorities: { encapsulation: ['VXLAN', 'MPLSoGRE'] } }).encapsulationPriorities, ['VXLAN', 'MPLSoGRE']);
  t.deepEqual(g({ encapsulation_priorities: null }).encapsulationPriorities, ['MPLSoUDP', 'MPLSoGRE', 'VXLAN']);
  t.deepEqual(g({ 'global-vrouter-config': { encapsulation_priorities: { encapsulation: [] } } }).encapsulationPriorities, []);
  const gerr = (v: unknown) => userErrorOf(() => g(v));
  t.is(gerr({ encapsulation_priorities: { encapsulation: ['MPLSoUDP', 'MPLSoFOO'] } }),
    'g.json: global-vrouter-config.encapsulation_priorities.encapsulation[1]: "MPLSoFOO" is not an encapsulation; the encapsulations are MPLSoGRE, MPLSoUDP, VXLAN');
  t.regex(gerr({ encapsulation_priorities: { encapsulation: ['VXLAN', 'VXLAN'] } }), /^g\.json: global-vrouter-config\.encapsulation_priorities\.encapsulation\[1\]: VXLAN is given twice/);
  t.regex(gerr({ encapsulation_priorities: ['VXLAN'] }), /^g\.json: global-vrouter-config\.encapsulation_priorities: expected \{"encapsulation"/);
  t.regex(gerr({ vxlan_network_identifier_mode: 1 }), /^g\.json: global-vrouter-config\.vxlan_network_identifier_mode: 1: expected "automatic" or "configured"$/);
  t.is(g({ vxlan_network_identifier_mode: 'configured' }).vxlanMode, 'configured');
  const odd = g({ vxlan_network_identifier_mode: 'CONFIGURED' });
  t.is(odd.vxlanMode, 'automatic');
  t.is(odd.ignored.length, 1);
  t.regex(odd.ignored[0], /vxlan_network_identifier_mode "CONFIGURED"/);
  t.deepEqual(g({ vxlan_network_identifier_mode: 'automatic' }).ignored, []);
  // Inside the topology the field is named from the topology file.
  const c = cluster();
  c.global_vrouter_config.encapsulation_priorities.encapsulation = ['MPLSoGRE', 'mpls'];
  refused(t, c, 'global_vrouter_config.encapsulation_priorities.encapsulation[1]', /"mpls" is not an encapsulation/);
});

test('agent.conf: DEFAULT.tunnel_type', (t) => {
  const conf = (v: string) => parseAgentConf(`[DEFAULT]\ntunnel_type = ${v}\n`, 'a.conf');
  t.is(parseAgentConf('', 'a.conf').tunnelType, 'MPLSoGRE');
  for (const v of ['MPLSoGRE', 'MPLSoUDP', 'VXLAN'] as const) t.is(conf(v).tunnelType, v);
  const warnings: string[] = [];
  parseAgentConf('[DEFAULT]\ntunnel_type = VXLAN\n', 'a.conf', (w) => warnings.push(w));
  t.deepEqual(warnings, [], 'tunnel_type is a known key');
  for (const v of ['vxlan', 'GRE', 'MPLSoGRE,VXLAN', '']) {
    const msg = userErrorOf(() => conf(v));
    t.regex(msg, /^a\.conf: \[DEFAULT\] tunnel_type = .*: expected one of MPLSoGRE, MPLSoUDP, VXLAN/, v);
  }
});

test('a reload that changes the cluster is refused (ComputeNode.shape)', (t) => {
  const shape = (f: (c: Obj) => void) => {
    const c = cluster();
    f(c);
    return ComputeNode.shape(topologyFrom(c, 'topo.json'));
  };
  const base = shape(() => undefined);
  t.is(shape((c) => { c.global_vrouter_config.encapsulation_priorities.encapsulation = ['VXLAN']; }), base, 'encapsulation priorities are runtime configuration');
  t.not(shape((c) => { c.nodes[1].fabric_ip = '192.168.50.13/24'; }), base);
  t.not(shape((c) => { c.vms[1].node = 'node1'; }), base);
  t.not(shape((c) => { c.networks[0].vxlan_network_identifier = 6001; }), base);
  t.not(shape((c) => { c.bare_metal[0].vtep_ip = '192.168.50.30'; }), base);
  t.not(shape((c) => { c.global_vrouter_config.vxlan_network_identifier_mode = 'automatic'; }), base);
});
