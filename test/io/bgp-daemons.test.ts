/**
 * The testbed's control plane for route_source "bgp", as planned and configured: the reflector on
 * br-fabric, FRR gateways instead of static fdb entries (an IRB address each), the reflector's gobgpd
 * configuration (checked by gobgpd's own --dry-run) and FRR's bgpd configuration.
 */
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { clusterPlan, underlayCommands } from '../../src/io/cluster';
import { clusterTopologyFrom } from '../../src/cli/testbed';
import { frrBgpdConf, reflectorToml } from '../../src/io/bgp-daemons';
import { e2e } from '../helpers/requires';

const raw = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  route_source: 'bgp',
  nodes: [{ name: 'node1', fabric_ip: '192.168.50.11/24' }, { name: 'node2', fabric_ip: '192.168.50.12/24' }],
  networks: [{ name: 'red', subnet: '10.2.0.0/24', gateway: '10.2.0.1' }, { name: 'blue', subnet: '10.3.0.0/24', gateway: '10.3.0.1' }],
  vms: [{ name: 'a', ip: '10.3.0.3', network: 'blue', node: 'node1' }, { name: 'b', ip: '10.3.0.254', network: 'blue', node: 'node2' }],
  bare_metal: [{ name: 'bm1', vtep_ip: '192.168.50.21', ip: '10.3.0.10', network: 'blue' }],
  ...over,
});

const plan = (over: Record<string, unknown> = {}) => clusterPlan(clusterTopologyFrom(raw(over), 't.json'), 'vrt3', 't.json');

test('the plan: the reflector on the fabric switch, FRR on the VTEP with an IRB address, no static fdb', (t) => {
  const p = plan();
  t.is(p.bgp?.reflector, '192.168.50.254');
  t.deepEqual(p.bgp?.clients, ['192.168.50.11', '192.168.50.12', '192.168.50.21']);
  t.deepEqual(p.bgp?.frrClients, ['192.168.50.21']);
  const v = p.vteps[0];
  t.deepEqual(v.fdb, [], 'FRR learns the remote MACs: no static fdb entries');
  // 10.3.0.254 is VM b's: the IRB takes the next free address down from the top of the subnet.
  t.is(v.frr?.irb, '10.3.0.253');
  t.is(v.frr?.rt, '64512:8000002', 'blue is the second network: target:64512:8000002');
  t.is(v.frr?.pathspace, 'vrt3-bm1');
  const lines = underlayCommands(p).map((c) => c.argv.join(' '));
  t.true(lines.includes('ip -n vrt3-fabric addr add 192.168.50.254/24 dev br-fabric'));
  t.true(lines.includes('ip -n vtep-bm1 addr add 10.3.0.253/24 dev br0'));
  t.false(lines.some((l) => l.startsWith('bridge ') && l.includes('fdb')), 'no bridge fdb command');
  // Without BGP: the static fdb of the overlay issue, no reflector, no FRR.
  const st = clusterPlan(clusterTopologyFrom({ ...raw(), route_source: undefined }, 't.json'), 'vrt3', 't.json');
  t.is(st.bgp, undefined);
  t.is(st.vteps[0].frr, undefined);
  t.true(st.vteps[0].fdb.length > 0);
});

test('the configurations: reflector clients with their families, FRR\'s VNI with the network\'s route target', (t) => {
  const p = plan({ bgp: { as: 65001, graceful_restart_time: 60 } });
  const toml = reflectorToml(p.bgp!);
  t.regex(toml, /\[global\.config\]\n {2}as = 65001\n {2}router-id = "192\.168\.50\.254"/);
  t.is(toml.match(/route-reflector-client = true/g)?.length, 3);
  t.is(toml.match(/afi-safi-name = "l3vpn-ipv4-unicast"/g)?.length, 2, 'the FRR client has EVPN only');
  t.regex(toml, /restart-time = 60/);
  const frr = frrBgpdConf(p.vteps[0], p.bgp!, [p.bgp!.reflector]);
  t.regex(frr, /router bgp 65001\n bgp router-id 192\.168\.50\.21/);
  t.regex(frr, / vni 2\n {3}rd 192\.168\.50\.21:2\n {3}route-target import 65001:8000002\n {3}route-target export 65001:8000002/);
  t.regex(frr, /neighbor 192\.168\.50\.254 activate/);
  const off = reflectorToml(plan({ bgp: { graceful_restart_time: 0 } }).bgp!);
  t.notRegex(off, /graceful-restart/, 'graceful_restart_time 0: none');
});

e2e({ tools: ['gobgpd'] })('gobgpd accepts the reflector configuration (gobgpd --dry-run)', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vre-rr-'));
  try {
    const f = path.join(dir, 'reflector.toml');
    fs.writeFileSync(f, reflectorToml(plan().bgp!));
    const r = spawnSync('gobgpd', ['--dry-run', '-f', f], { encoding: 'utf8', timeout: 20000 });
    t.is(r.status, 0, `${r.stdout}${r.stderr}`);
    const bad = path.join(dir, 'bad.toml');
    fs.writeFileSync(bad, reflectorToml(plan().bgp!).replace('peer-as = 64512', 'peer-as = "x"'));
    t.not(spawnSync('gobgpd', ['--dry-run', '-f', bad], { encoding: 'utf8', timeout: 20000 }).status, 0, 'and refuses a broken one (the check can fail)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
