/**
 * The topology's Contrail objects (network policies and their references, VMI fat-flow protocols,
 * floating IPs, router-external networks with outside hosts, global-vrouter-config), inline or as
 * files; the errors they give; and the policy engine's matching (first match, `<>` mirrored, subnets,
 * port ranges, implicit rules, gateway ICMP/DNS).
 */
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PolicyEngine, UUID_GATEWAY, UUID_IMPLICIT_ALLOW, UUID_IMPLICIT_DENY } from '../../src/agent/policy';
import { ipParse, readTopology, topologyFrom } from '../../src/agent/topology';
import { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP } from '../../src/dp/defs';

const rule = (over: Record<string, unknown>) => ({
  direction: '>', protocol: 'tcp',
  src_addresses: [{ virtual_network: 'default-domain:admin:blue' }], dst_addresses: [{ virtual_network: 'default-domain:admin:red' }],
  action_list: { simple_action: 'pass' },
  ...over,
});

const base = () => ({
  networks: [
    { name: 'blue', subnet: '10.2.0.0/24', gateway: '10.2.0.1', network_policy_refs: [{ to: ['default-domain', 'admin', 'p'] }] },
    { name: 'red', subnet: '10.3.0.0/24', gateway: '10.3.0.1', network_policy_refs: ['p'] },
    { name: 'green', subnet: '10.4.0.0/24', gateway: '10.4.0.1' },
    { name: 'public', subnet: '203.0.113.0/24', gateway: '203.0.113.1', router_external: true, outside: { namespace: 'out', ip: '203.0.113.254' } },
  ],
  vms: [{ name: 'b1', ip: '10.2.0.10', network: 'blue', floating_ips: ['203.0.113.10'] }],
  network_policies: [{
    'network-policy': {
      fq_name: ['default-domain', 'admin', 'p'],
      network_policy_entries: {
        policy_rule: [
          rule({ rule_uuid: 'r-80', dst_ports: [{ start_port: 80, end_port: 90 }] }),
          rule({ rule_uuid: 'r-deny-82', dst_ports: [{ start_port: 82, end_port: 82 }], action_list: { simple_action: 'deny' } }),
          rule({ rule_uuid: 'r-udp', direction: '<>', protocol: 'udp', src_ports: [{ start_port: 5000, end_port: 5000 }], action_list: { simple_action: 'pass', log: true } }),
          rule({ rule_uuid: 'r-subnet', protocol: 'any', src_addresses: [{ subnet: { ip_prefix: '10.2.0.128', ip_prefix_len: 25 } }], dst_addresses: [{ virtual_network: 'any' }] }),
        ],
      },
    },
  }],
  global_vrouter_config: {
    flow_export_rate: 100,
    flow_aging_timeout_list: { flow_aging_timeout: [{ protocol: 'udp', port: 53, timeout_in_seconds: 5 }, { protocol: 'gre', port: 0, timeout_in_seconds: 9 }] },
  },
});

const err = (raw: unknown): string => {
  try {
    topologyFrom(raw, 't.json');
    return '';
  } catch (e) {
    return (e as Error).message;
  }
};

test('a topology with every Contrail object parses into the agent view', (t) => {
  const topo = topologyFrom(base(), 't.json');
  t.deepEqual(topo.networks.map((n) => [n.fqName, n.policies, n.routerExternal]), [
    ['default-domain:admin:blue', ['default-domain:admin:p'], false],
    ['default-domain:admin:red', ['default-domain:admin:p'], false],
    ['default-domain:admin:green', [], false],
    ['default-domain:admin:public', [], true],
  ]);
  t.deepEqual(topo.vms[0].floatingIps, [{ ip: ipParse('203.0.113.10'), ipStr: '203.0.113.10', network: 'public' }]);
  t.deepEqual(topo.outside.map((h) => [h.name, h.ipStr, h.namespace, h.nsExisting]), [['public-outside', '203.0.113.254', 'out', false]]);
  t.deepEqual(topo.global.agingTimeouts, [{ proto: IPPROTO_UDP, port: 53, timeoutS: 5 }]);
  t.is(topo.global.flowExportRate, 100);
  t.is(topo.notes.length, 1, 'the unknown aging protocol is noted, as the 2.22 agent ignores it');
  t.regex(topo.notes[0], /flow_aging_timeout\[1\]\.protocol "gre"/);
});

test('objects given as files are read relative to the topology file', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'topo-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const b = base();
  fs.writeFileSync(path.join(dir, 'p.json'), JSON.stringify(b.network_policies[0]));
  fs.writeFileSync(path.join(dir, 'gvc.json'), JSON.stringify({ 'global-vrouter-config': b.global_vrouter_config }));
  fs.writeFileSync(path.join(dir, 'vmi.json'), JSON.stringify({ 'virtual-machine-interface': {
    virtual_machine_interface_fat_flow_protocols: { fat_flow_protocol: [{ protocol: 'udp', port: 53 }, { protocol: 'icmp', port: 0 }, { protocol: 'udp', port: 53 }] },
  } }));
  const raw = { ...b, network_policies: ['p.json'], global_vrouter_config: 'gvc.json' };
  raw.vms = [{ ...raw.vms[0], virtual_machine_interface: 'vmi.json' } as typeof raw.vms[0]];
  fs.writeFileSync(path.join(dir, 'topology.json'), JSON.stringify(raw));
  const topo = readTopology(path.join(dir, 'topology.json'));
  t.deepEqual(topo.vms[0].fatFlow, [[IPPROTO_UDP, 53], [IPPROTO_ICMP, 0]], 'duplicates once');
  t.true(topo.policies.has('default-domain:admin:p'));
  t.deepEqual(topo.global.agingTimeouts, [{ proto: IPPROTO_UDP, port: 53, timeoutS: 5 }]);
  // A missing file and a file that is not JSON name the file.
  fs.writeFileSync(path.join(dir, 'topology.json'), JSON.stringify({ ...raw, global_vrouter_config: 'nope.json' }));
  t.throws(() => readTopology(path.join(dir, 'topology.json')), { message: /topology\.json: global_vrouter_config: nope\.json: no such file/ });
  fs.writeFileSync(path.join(dir, 'bad.json'), '{');
  fs.writeFileSync(path.join(dir, 'topology.json'), JSON.stringify({ ...raw, global_vrouter_config: 'bad.json' }));
  t.throws(() => readTopology(path.join(dir, 'topology.json')), { message: /bad\.json: \(top\): not valid JSON/ });
});

test('bad Contrail objects: one line naming the file, the field and what is expected', (t) => {
  const cases: [(b: ReturnType<typeof base>) => unknown, RegExp][] = [
    [(b) => ({ ...b, extra: 1 }), /t\.json: \(top\)\.extra: unknown key/],
    [(b) => { b.networks[0].network_policy_refs = [{ to: ['default-domain', 'admin', 'q'] }]; return b; }, /networks\[0\]\.network_policy_refs\[0\]: no network policy default-domain:admin:q/],
    [(b) => { b.vms[0].floating_ips = ['10.3.0.50']; return b; }, /vms\[0\]\.floating_ips\[0\]: 10\.3\.0\.50 is not a host address of a router_external network/],
    [(b) => { b.vms[0].floating_ips = ['203.0.113.254']; return b; }, /networks\[3\]\.outside\.ip: 203\.0\.113\.254 is also vms\[0\]\.floating_ips\[0\]/],
    [(b) => { (b.networks[2] as Record<string, unknown>).outside = { namespace: 'o2', ip: '10.4.0.9' }; return b; }, /networks\[2\]\.outside: only a router_external network/],
    [(b) => { b.network_policies[0]['network-policy'].network_policy_entries.policy_rule[0].action_list = { simple_action: 'allow' } as never; return b; },
      /network_policies\[0\]\.network_policy_entries\.policy_rule\[0\]\.action_list\.simple_action: "allow": expected "pass" or "deny"/],
    [(b) => { (b.network_policies[0]['network-policy'].network_policy_entries.policy_rule[0] as Record<string, unknown>).dst_ports = [{ start_port: 90, end_port: 80 }]; return b; },
      /policy_rule\[0\]\.dst_ports\[0\]: 90\.\.80 is not a port range/],
    [(b) => { b.network_policies[0]['network-policy'].network_policy_entries.policy_rule[0].direction = '<'; return b; }, /policy_rule\[0\]\.direction: "<"/],
    [(b) => { (b.network_policies[0]['network-policy'].network_policy_entries.policy_rule[3].src_addresses[0] as Record<string, unknown>).subnet = { ip_prefix: '10.2.0.300', ip_prefix_len: 25 }; return b; },
      /src_addresses\[0\]\.subnet\.ip_prefix: "10\.2\.0\.300" is not an IPv4 address/],
    [(b) => { b.global_vrouter_config.flow_aging_timeout_list.flow_aging_timeout[0].timeout_in_seconds = -5; return b; },
      /global_vrouter_config\.flow_aging_timeout_list\.flow_aging_timeout\[0\]\.timeout_in_seconds: -5: expected an integer/],
    [(b) => { (b.vms[0] as Record<string, unknown>).virtual_machine_interface = { virtual_machine_interface_fat_flow_protocols: { fat_flow_protocol: [{ protocol: 'dns', port: 53 }] } }; return b; },
      /vms\[0\]\.virtual_machine_interface\.virtual_machine_interface_fat_flow_protocols\.fat_flow_protocol\[0\]\.protocol: "dns"/],
  ];
  for (const [mk, re] of cases) t.regex(err(mk(base())), re);
});

test('policy matching: first match wins, <> is mirrored, subnets and port ranges, the implicit rules', (t) => {
  const topo = topologyFrom(base(), 't.json');
  const pe = new PolicyEngine(topo.networks, topo.policies);
  const blue = 'default-domain:admin:blue';
  const red = 'default-domain:admin:red';
  const green = 'default-domain:admin:green';
  const ep = (ip: string, vn: string, port: number) => ({ ip: ipParse(ip), vn, port });
  const gw = ipParse('10.2.0.1');
  const m = (proto: number, s: ReturnType<typeof ep>, d: ReturnType<typeof ep>, acl = blue) => {
    const v = pe.match(acl, proto, s, d, gw);
    return `${v.pass ? 'pass' : 'deny'}${v.log ? '+log' : ''} ${v.uuid}`;
  };
  t.is(m(IPPROTO_TCP, ep('10.2.0.10', blue, 40000), ep('10.3.0.10', red, 80)), 'pass r-80');
  t.is(m(IPPROTO_TCP, ep('10.2.0.10', blue, 40000), ep('10.3.0.10', red, 82)), 'pass r-80', 'the earlier rule wins over the later deny');
  t.is(m(IPPROTO_TCP, ep('10.2.0.10', blue, 40000), ep('10.3.0.10', red, 91)), `deny ${UUID_IMPLICIT_DENY}`, 'out of range: the implicit deny of the pair');
  t.is(m(IPPROTO_TCP, ep('10.3.0.10', red, 80), ep('10.2.0.10', blue, 40000)), `deny ${UUID_IMPLICIT_DENY}`, '">" is one way');
  t.is(m(IPPROTO_UDP, ep('10.2.0.10', blue, 5000), ep('10.3.0.10', red, 9)), `pass+log r-udp`);
  t.is(m(IPPROTO_UDP, ep('10.3.0.10', red, 9), ep('10.2.0.10', blue, 5000)), `pass+log r-udp`, '"<>" mirrors addresses and ports');
  t.is(m(IPPROTO_UDP, ep('10.3.0.10', red, 5000), ep('10.2.0.10', blue, 9)), `deny ${UUID_IMPLICIT_DENY}`);
  t.is(m(IPPROTO_ICMP, ep('10.2.0.200', blue, 0), ep('10.4.0.5', green, 0)), 'pass r-subnet', 'a subnet source, any destination');
  t.is(m(IPPROTO_ICMP, ep('10.2.0.10', blue, 0), ep('10.2.0.11', blue, 0)), `pass ${UUID_IMPLICIT_ALLOW}`, 'within the network');
  t.is(m(IPPROTO_UDP, ep('10.2.0.10', blue, 3333), ep('10.2.0.1', blue, 53)), `pass ${UUID_GATEWAY}`, 'DNS to the gateway');
  t.is(m(IPPROTO_ICMP, ep('10.4.0.5', green, 0), ep('10.4.0.6', green, 0), green), `pass ${UUID_IMPLICIT_ALLOW}`, 'no policy: implicit allow');
  t.true(pe.references(blue, red) && pe.references(red, blue));
  t.false(pe.references(blue, green), 'a rule to "any" does not connect networks (no routes leaked)');
});

test('VM kinds: netns (default), qemu with its script and memory, attach to an existing interface; their errors', (t) => {
  const nets = [{ name: 'n', subnet: '10.9.0.0/24', gateway: '10.9.0.1' }];
  const topo = topologyFrom({
    networks: nets,
    vms: [
      { name: 'a', ip: '10.9.0.2', network: 'n' },
      { name: 'g', ip: '10.9.0.3', network: 'n', kind: 'qemu', run: 'ping -c 1 10.9.0.2', memory_mb: 192 },
      { name: 'v', ip: '10.9.0.4', network: 'n', mac: '52:54:00:12:34:56', attach: 'vnet0' },
    ],
  }, 't.json');
  t.deepEqual(topo.vms.map((v) => [v.kind, v.namespace, v.nsExisting, v.tap.startsWith('tap')]), [
    ['netns', 'vm-a', false, true], ['qemu', '', false, true], ['attach', '', false, false],
  ]);
  t.is(topo.vms[2].tap, 'vnet0');
  t.deepEqual(topo.vms[1].guest, { run: 'ping -c 1 10.9.0.2', memoryMb: 192 });
  const bad = (vm: Record<string, unknown>, msg: RegExp): void => {
    t.throws(() => topologyFrom({ networks: nets, vms: [{ name: 'x', ip: '10.9.0.9', network: 'n', ...vm }] }, 't.json'), { message: msg });
  };
  bad({ kind: 'kvm' }, /^t\.json: vms\[0\]\.kind: "kvm": expected "netns" \(the default\) or "qemu"$/);
  bad({ attach: 'a/b' }, /^t\.json: vms\[0\]\.attach: "a\/b" is not an interface name/);
  bad({ attach: 'x'.repeat(16) }, /vms\[0\]\.attach: .* is not an interface name \(1 to 15 characters\)/);
  bad({ attach: 'veth0', kind: 'qemu' }, /vms\[0\]\.attach: an attached interface has no "kind" and no "namespace"/);
  bad({ attach: 'veth0', namespace: 'ns1' }, /vms\[0\]\.attach: an attached interface has no "kind"/);
  bad({ kind: 'qemu', namespace: 'ns1' }, /vms\[0\]\.namespace: a qemu guest has no namespace/);
  bad({ run: 'true' }, /vms\[0\]\.run: only a "kind": "qemu" VM has these/);
  bad({ kind: 'qemu', memory_mb: 64 }, /vms\[0\]\.memory_mb: 64: expected MiB from 128 to 4096/);
  bad({ kind: 'qemu', run: 7 }, /vms\[0\]\.run: expected the shell commands the guest runs/);
  t.throws(() => topologyFrom({ networks: nets, vms: [
    { name: 'p', ip: '10.9.0.5', network: 'n', attach: 'veth0' }, { name: 'q', ip: '10.9.0.6', network: 'n', attach: 'veth0' },
  ] }, 't.json'), { message: /vms\[1\]\.attach: interface veth0 is attached twice/ });
});
