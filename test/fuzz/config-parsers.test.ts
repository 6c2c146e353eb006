/**
 * Fuzz the parsers of configuration files (issue 16): the topology, the Contrail API objects,
 * contrail-vrouter-agent.conf and the module-parameter file. Each returns a result or throws one
 * UserError of one short line naming the file, within a second. Seeded and bounded (helpers.ts).
 */
import test from 'ava';
import fc from 'fast-check';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readTopology, topologyFrom } from '../../src/agent/topology';
import { parseGlobalVrouterConfig, parseNetworkPolicy, parseVmi } from '../../src/agent/contrail-config';
import { parseAgentConf, readAgentConf } from '../../src/agent/agent-conf';
import { parseParamText, readParamFile, resolveParams } from '../../src/params/module-params';
import { FC, checkCall, hostileValue, mutated, withValue } from './helpers';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-config-'));
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

const POLICY = {
  'network-policy': {
    fq_name: ['default-domain', 'admin', 'web'],
    network_policy_entries: {
      policy_rule: [{
        direction: '<>', protocol: 'tcp', action_list: { simple_action: 'pass', log: true },
        src_addresses: [{ virtual_network: 'default-domain:admin:demo' }], dst_addresses: [{ subnet: { ip_prefix: '10.1.1.0', ip_prefix_len: 24 } }],
        src_ports: [{ start_port: -1, end_port: -1 }], dst_ports: [{ start_port: 80, end_port: 80 }],
      }],
    },
  },
};
const GVC = { 'global-vrouter-config': { flow_export_rate: 100, flow_aging_timeout_list: { flow_aging_timeout: [{ protocol: 'tcp', port: 80, timeout_in_seconds: 30 }] } } };
const VMI = { virtual_machine_interface_fat_flow_protocols: { fat_flow_protocol: [{ protocol: 'tcp', port: 22 }] } };
const TOPO = {
  networks: [
    { name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1', network_policy_refs: [{ to: ['default-domain', 'admin', 'web'], attr: { sequence: { major: 0, minor: 0 } } }] },
    { name: 'public', subnet: '203.0.113.0/24', gateway: '203.0.113.1', router_external: true, outside: { namespace: 'outside', ip: '203.0.113.254' } },
  ],
  vms: [
    { name: 'vm1', ip: '10.1.1.3', network: 'demo', floating_ips: ['203.0.113.10'], virtual_machine_interface: VMI },
    { name: 'vm2', ip: '10.1.1.4', network: 'demo', mac: '02:00:0a:01:01:04', mtu: 1500 },
    { name: 'g1', ip: '10.1.1.5', network: 'demo', kind: 'qemu', run: 'true', memory_mb: 256 },
  ],
  network_policies: [POLICY],
  global_vrouter_config: GVC,
};

/** A cluster: two nodes, VNIs in configured mode, a VM on each node, a bare-metal host. */
const CLUSTER = {
  nodes: [
    { name: 'node1', fabric_ip: '192.168.50.11/24', fabric_interface: 'eth1', encapsulations: ['MPLSoUDP', 'MPLSoGRE', 'VXLAN'] },
    { name: 'node2', fabric_ip: '192.168.50.12/24' },
  ],
  networks: [
    { name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1', vxlan_network_identifier: 5001 },
    { name: 'public', subnet: '203.0.113.0/24', gateway: '203.0.113.1', router_external: true, vxlan_network_identifier: 5002, outside: { namespace: 'outside', ip: '203.0.113.254', node: 'node2' } },
  ],
  vms: [
    { name: 'vm1', ip: '10.1.1.3', network: 'demo', node: 'node1', floating_ips: ['203.0.113.10'] },
    { name: 'vm2', ip: '10.1.1.4', network: 'demo', node: 'node2', kind: 'qemu' },
  ],
  bare_metal: [
    { name: 'bms1', vtep_ip: '192.168.50.20', ip: '10.1.1.20', network: 'demo', mac: '02:00:0a:01:01:14', namespace: 'bms-bms1', vtep_namespace: 'vtep-bms1', mtu: 1500 },
  ],
  global_vrouter_config: { encapsulation_priorities: { encapsulation: ['MPLSoUDP', 'MPLSoGRE', 'VXLAN'] }, vxlan_network_identifier_mode: 'configured' },
};

/** Every scalar in `v`: values that are valid somewhere, to put where they may not be. */
function leaves(v: unknown, out: unknown[] = []): unknown[] {
  if (v !== null && typeof v === 'object') for (const x of Object.values(v)) leaves(x, out);
  else if (!out.includes(v)) out.push(v);
  return out;
}

/** Every path to a value in `v` (objects and arrays too), and the paths where a key can be added. */
function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (at.length > 0) out.push(at);
  if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) paths(x, [...at, Array.isArray(v) ? Number(k) : k], out);
    if (!Array.isArray(v)) for (const k of ['__proto__', 'constructor', 'unknown_key']) out.push([...at, k]);
  }
  return out;
}

test('the valid inputs are valid', (t) => {
  t.is(topologyFrom(TOPO, 'topo.json', dir).vms.length, 3);
  t.is(parseNetworkPolicy(POLICY, 'p.json', 'network-policy').rules.length, 1);
});

test('topology: a hostile value at any place is a valid topology or one UserError line', (t) => {
  const all = paths(TOPO);
  fc.assert(fc.property(fc.constantFrom(...all), hostileValue(), (p, v) => {
    const problem = checkCall(() => topologyFrom(withValue(TOPO, p, v), 'topo.json', dir), 'topo.json');
    if (problem) t.log(p.join('.'), problem);
    return problem === '';
  }), FC);
  t.pass();
});

test('cluster topology: a hostile or misplaced value, a removed key, or a mutated text is valid or one UserError line', (t) => {
  t.is(topologyFrom(CLUSTER, 'topo.json', dir).nodes.length, 2);
  const all = paths(CLUSTER);
  // A value valid elsewhere in the file (a node name as a namespace, a fabric address as a VTEP, a VNI as an MTU).
  const value = fc.oneof(hostileValue(), fc.constantFrom(...leaves(CLUSTER)), fc.constant(undefined));
  fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(...all), value), { minLength: 1, maxLength: 3 }), (edits) => {
    let doc: unknown = CLUSTER;
    for (const [p, v] of edits) {
      try {
        doc = withValue(doc, p, v);
      } catch {
        // An earlier edit replaced a parent of this path: skip it.
      }
    }
    const problem = checkCall(() => topologyFrom(doc, 'topo.json', dir), 'topo.json');
    if (problem) t.log(edits.map(([p]) => p.join('.')).join(' ; '), problem);
    return problem === '';
  }), { ...FC, numRuns: 300 });
  const f = path.join(dir, 'cluster.json');
  fc.assert(fc.property(mutated(JSON.stringify(CLUSTER)), (s) => {
    fs.writeFileSync(f, s);
    return checkCall(() => readTopology(f), f) === '';
  }), FC);
});

test('topology: the whole document of a wrong shape', (t) => {
  fc.assert(fc.property(hostileValue(), (v) => checkCall(() => topologyFrom(v, 'topo.json', dir), 'topo.json') === ''), FC);
  t.pass();
});

test('topology file: mutated and truncated texts', (t) => {
  const text = JSON.stringify(TOPO);
  const f = path.join(dir, 'topo.json');
  fc.assert(fc.property(mutated(text), (s) => {
    fs.writeFileSync(f, s);
    return checkCall(() => readTopology(f), f) === '';
  }), FC);
  const small = JSON.stringify({ networks: [{ name: 'a', subnet: '10.0.0.0/24', gateway: '10.0.0.1' }], vms: [{ name: 'v', ip: '10.0.0.2', network: 'a' }] }, null, 1);
  for (let i = 0; i < small.length; i++) {
    fs.writeFileSync(f, small.slice(0, i));
    t.is(checkCall(() => readTopology(f), f), '', `truncated at ${i}`);
  }
});

test('regression: a deeply nested value in an error line is a UserError, not a stack overflow', (t) => {
  const deep = JSON.parse('['.repeat(100000) + ']'.repeat(100000)) as unknown;
  t.is(checkCall(() => topologyFrom(withValue(TOPO, ['networks', 0, 'subnet'], deep), 'topo.json'), 'networks[0].subnet'), '');
  t.is(checkCall(() => topologyFrom(withValue(TOPO, ['vms', 0, 'mtu'], deep), 'topo.json'), 'vms[0].mtu'), '');
  t.is(checkCall(() => parseVmi({ virtual_machine_interface_fat_flow_protocols: { fat_flow_protocol: [{ protocol: deep }] } }, 'v.json', 'vmi'), 'v.json'), '');
});

test('regression: a JSON syntax error is one line (V8 quotes the input, newlines included)', (t) => {
  const f = path.join(dir, 'nl.json');
  fs.writeFileSync(f, 'x\ny');
  t.is(checkCall(() => readTopology(f), f), '');
  fs.writeFileSync(path.join(dir, 'obj.json'), '{\n"a":\n}');
  t.is(checkCall(() => topologyFrom({ ...TOPO, global_vrouter_config: 'obj.json' }, 'topo.json', dir), 'obj.json'), '');
});

test('regression: a huge string value is shown cut short', (t) => {
  const msg = checkCall(() => topologyFrom(withValue(TOPO, ['vms', 0, 'ip'], 'A'.repeat(1 << 20)), 'topo.json'), 'vms[0].ip');
  t.is(msg, '');
  t.is(checkCall(() => topologyFrom({ ...TOPO, global_vrouter_config: `${'a'.repeat(5000)}\n.json` }, 'topo.json', dir), 'global_vrouter_config'), '');
});

test('regression: /dev/zero as the topology, an object file, the agent.conf or the parameter file is refused, bounded', (t) => {
  t.is(checkCall(() => readTopology('/dev/zero'), '/dev/zero'), '');
  t.is(checkCall(() => topologyFrom({ ...TOPO, global_vrouter_config: '/dev/zero' }, 'topo.json', dir), '/dev/zero'), '');
  t.is(checkCall(() => readAgentConf('/dev/zero'), '/dev/zero'), '');
  t.is(checkCall(() => readParamFile('/dev/zero'), '/dev/zero'), '');
  t.is(checkCall(() => readTopology(dir), dir), '');
});

test('regression: thousands of networks or VMs are refused before the quadratic checks', (t) => {
  const networks = Array.from({ length: 20000 }, (_, i) => ({ name: `n${i}`, subnet: `10.${i >> 8}.${i & 255}.0/24`, gateway: `10.${i >> 8}.${i & 255}.1` }));
  t.is(checkCall(() => topologyFrom({ networks, vms: [] }, 'topo.json'), 'networks'), '');
});

test('Contrail objects: hostile values at any place', (t) => {
  const cases: [unknown, (v: unknown) => unknown][] = [
    [POLICY, (v) => parseNetworkPolicy(v, 'p.json', 'network-policy')],
    [GVC, (v) => parseGlobalVrouterConfig(v, 'g.json', 'global-vrouter-config')],
    [VMI, (v) => parseVmi(v, 'v.json', 'virtual-machine-interface')],
  ];
  for (const [base, parse] of cases) {
    fc.assert(fc.property(fc.constantFrom(...paths(base)), hostileValue(), (p, v) => checkCall(() => parse(withValue(base, p, v)), '.json') === ''), { ...FC, numRuns: 80 });
    fc.assert(fc.property(hostileValue(), (v) => checkCall(() => parse(v), '.json') === ''), { ...FC, numRuns: 40 });
  }
  t.pass();
});

const CONF = `[DEFAULT]
flow_cache_timeout = 60
disable_flow_collection = false
collectors = 127.0.0.1:8086 ipfix://127.0.0.1
http_server_port = 8085
log_flow = 1
[FLOWS]
max_vm_flows = 50
max_system_linklocal_flows = 1024
max_vm_linklocal_flows = 512
tcp_flow_scan_interval = 15
[VIRTUAL-HOST-INTERFACE]
ip = 10.1.1.3/24
`;

test('agent.conf: mutated, truncated, and hostile values', (t) => {
  t.is(parseAgentConf(CONF, 'a.conf').maxVmFlows, 50);
  fc.assert(fc.property(mutated(CONF), (s) => checkCall(() => parseAgentConf(s, 'a.conf'), 'a.conf') === ''), FC);
  for (let i = 0; i < CONF.length; i++) t.is(checkCall(() => parseAgentConf(CONF.slice(0, i), 'a.conf'), 'a.conf'), '', `truncated at ${i}`);
  const key = fc.constantFrom('flow_cache_timeout', 'tunnel_type', 'collectors', 'http_server_port', 'log_flow', 'max_vm_flows', 'tcp_flow_scan_interval', '__proto__', 'constructor', 'max_vm_flows[]', 'collectors[]');
  const val = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('NaN', '1e999', '-1', '0x10', '99999999999999999999999', '"', "'1'", 'true', '[]', '{}'), fc.integer({ min: 1e4, max: 3e5 }).map((n) => '9'.repeat(n)));
  fc.assert(fc.property(fc.constantFrom('DEFAULT', 'FLOWS', 'VIRTUAL-HOST-INTERFACE', '__proto__', 'DEFAULT.x'), key, val, (sec, k, v) => {
    const warnings: string[] = [];
    const p = checkCall(() => parseAgentConf(`[${sec}]\n${k} = ${v}\n${k} = ${v}\n`, 'a.conf', (w) => warnings.push(w)), 'a.conf');
    return p === '' && warnings.every((w) => !/\n/.test(w) && w.length < 2000);
  }), FC);
});

test('regression: agent.conf: a key that is also a section ([DEFAULT.key]) is a UserError, not a TypeError', (t) => {
  t.is(checkCall(() => parseAgentConf('[DEFAULT.flow_cache_timeout]\nx = 1\n', 'a.conf'), 'flow_cache_timeout'), '');
  t.is(checkCall(() => parseAgentConf('[FLOWS.max_vm_flows]\nx = 1\n', 'a.conf'), 'max_vm_flows'), '');
});

test('regression: agent.conf: thousands of unknown keys give a short warning', (t) => {
  const warnings: string[] = [];
  parseAgentConf('[DEFAULT]\n' + Array.from({ length: 5000 }, (_, i) => `k${i} = 1`).join('\n'), 'a.conf', (w) => warnings.push(w));
  t.is(warnings.length, 1);
  t.true(warnings[0].length < 400);
});

const PARAMS = 'options vrouter vr_flow_entries=4096 vr_oflow_entries=0x400 \\\n  vr_vrfs=010 # comment\noptions other x=1\n';

test('module parameters: mutated, truncated, hostile values', (t) => {
  const parse = (s: string): unknown => resolveParams(parseParamText(s, 'p.conf'), { memoryLimit: 1 << 30 });
  t.is((parse(PARAMS) as { vr_vrfs: number }).vr_vrfs, 8);
  fc.assert(fc.property(mutated(PARAMS), (s) => checkCall(() => parse(s), 'p.conf') === ''), FC);
  for (let i = 0; i < PARAMS.length; i++) t.is(checkCall(() => parse(PARAMS.slice(0, i)), 'p.conf'), '', `truncated at ${i}`);
  const name = fc.constantFrom('vr_flow_entries', 'vr-oflow-entries', 'vr_vrfs', '__proto__', 'constructor', 'toString', 'x'.repeat(100000));
  const val = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('NaN', '-1', '1e9', '0x', '0xffffffffff', '"4"', '08', '+4'), fc.integer({ min: 1e4, max: 3e5 }).map((n) => '7'.repeat(n)));
  fc.assert(fc.property(name, val, (n, v) => checkCall(() => parse(`options vrouter ${n}=${v}\n`), 'p.conf') === ''), FC);
});

test('regression: module parameters: many continuation lines are read in linear time', (t) => {
  const text = 'options vrouter ' + ' \\\n'.repeat(300000) + 'vr_flow_entries=8\n';
  t.is(checkCall(() => parseParamText(text, 'p.conf'), 'p.conf'), '');
});
