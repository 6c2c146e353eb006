/**
 * The routes a node announces and how peers' routes are read back: every path is encoded with gobgp's
 * own protobuf definitions and decoded again (as gobgpd hands it back), so the round trip checks the
 * Any packing too; bad routes give their reason; the topology's bgp section refuses bad values.
 */
import test from 'ava';
import * as fc from 'fast-check';
import { Fabric, fabricOf, imetPath, macIpPath, readPath, routeTarget, vpnPath, RT_FIRST } from '../../../src/agent/bgp/contrail-bgp';
import { Msg, pack, unpack } from '../../../src/agent/bgp/gobgp-api';
import { topologyFrom } from '../../../src/agent/topology';
import type { Network } from '../../../src/lib/topology-types';
import { userErrorOf } from '../../helpers/user-error';
import { e2e } from '../../helpers/requires';

/** The path tests encode with gobgp's .proto files (Debian's golang-github-osrg-gobgp-dev). */
const withProtos = e2e({ tools: ['/usr/share/gocode/src/github.com/osrg/gobgp/api/gobgp.proto'] });

const me = { as: 64512, ip: '192.168.50.11', routerMac: '02:00:00:32:00:0b', encaps: ['MPLSoUDP', 'VXLAN'] as ('MPLSoUDP' | 'VXLAN')[] };
const nets = [{ name: 'demo' }, { name: 'web' }] as Network[];
const fab: Fabric = fabricOf((192 << 24 | 168 << 16 | 50 << 8 | 0) >>> 0, 24, 64512, nets, (n) => (n.name === 'demo' ? 5001 : 5002));
const vm = { ip: '10.1.1.3', mac: '02:00:0a:01:01:03', vrf: 1, vni: 5001, label: 16, vn: 0 };

/** A path as a peer's would arrive: re-encoded from its wire bytes, with the neighbour it came from. */
function fromPeer(p: Msg, neighbor = '192.168.50.254'): Msg {
  const nlri = unpack(p.nlri);
  return { ...p, nlri: pack(nlri!.type, nlri!.value), pattrs: p.pattrs.map((a: Msg) => pack(unpack(a)!.type, unpack(a)!.value)), neighbor_ip: neighbor };
}

withProtos('a VM\'s MAC/IP route reads back with its VNI, next hop, route target and encapsulations', (t) => {
  const l = readPath(fromPeer(macIpPath(me, vm)), fab);
  if (typeof l === 'string') return t.fail(l);
  t.is(l.kind, 'mac-ip');
  t.is(l.mac, vm.mac);
  t.is(l.ipStr, vm.ip);
  t.is(l.label, 5001);
  t.is(l.nexthopStr, me.ip);
  t.is(l.vn, 0);
  t.is(l.rd, '192.168.50.11:1');
  t.deepEqual(l.encaps, ['MPLSoUDP', 'VXLAN']);
});

withProtos('the inet-vpn route carries the MPLS label; the type-3 the VNI in its PMSI tunnel', (t) => {
  const v = readPath(fromPeer(vpnPath(me, vm)), fab);
  if (typeof v === 'string') return t.fail(v);
  t.is(v.kind, 'vpn');
  t.is(v.label, 16);
  t.is(v.ipStr, '10.1.1.3');
  const i = readPath(fromPeer(imetPath(me, 1, 5001, 0)), fab);
  if (typeof i === 'string') return t.fail(i);
  t.is(i.kind, 'imet');
  t.is(i.label, 5001);
  t.deepEqual(i.encaps, ['VXLAN']);
});

withProtos('route targets are target:AS:8000000+n, one per network in the topology\'s order', (t) => {
  t.is(routeTarget(64512, 0).text, `target:64512:${RT_FIRST + 1}`);
  t.is(routeTarget(65000, 3).local, RT_FIRST + 4);
  const web = readPath(fromPeer(macIpPath(me, { ...vm, vn: 1, vni: 5002 })), fab);
  t.is(typeof web === 'string' ? -1 : web.vn, 1);
});

withProtos('malformed routes give their reason and are never installed', (t) => {
  t.is(readPath(fromPeer(macIpPath(me, { ...vm, vni: 5002 })), fab), 'bad-vni'); // demo's VNI is 5001
  t.is(readPath(fromPeer(macIpPath({ ...me, ip: '10.9.9.9' }, vm)), fab), 'nexthop-outside-fabric');
  t.is(readPath(fromPeer(vpnPath(me, { ...vm, label: 3 })), fab), 'bad-label');
  t.is(readPath(fromPeer(macIpPath({ ...me, as: 65001 }, vm)), fab), 'unknown-route-target');
  t.is(readPath(fromPeer(macIpPath(me, { ...vm, ip: '' })), fab), 'mac-only');
  t.is(readPath({ nlri: { type_url: 'type.googleapis.com/apipb.Nope', value: Buffer.alloc(3) }, pattrs: [] }, fab), 'malformed');
  t.is(readPath({ nlri: null, pattrs: [] }, fab), 'malformed');
});

withProtos('property: any VM route reads back as announced, or is refused with a reason (no throw)', (t) => {
  fc.assert(fc.property(
    fc.ipV4(), fc.integer({ min: 0, max: 0xffffff }), fc.integer({ min: 0, max: 0xfffff }), fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 }),
    (ip, vni, label, mac) => {
      const m = mac.map((x) => x.toString(16).padStart(2, '0')).join(':');
      const v = { ip, mac: m, vrf: 1, vni, label, vn: 0 };
      for (const p of [macIpPath(me, v), vpnPath(me, v)]) {
        const l = readPath(fromPeer(p), fab);
        if (typeof l === 'string') {
          if (!['bad-vni', 'bad-label', 'mac-only'].includes(l)) return false;
        } else if (l.ipStr !== ip || (l.kind === 'mac-ip' ? l.label !== 5001 || l.mac !== m : l.label !== label)) {
          return false;
        }
      }
      return true;
    },
  ), { numRuns: 300 });
  t.pass();
});

const bgpTopo = (bgp?: unknown, extra: Record<string, unknown> = {}): unknown => ({
  route_source: 'bgp', ...(bgp === undefined ? {} : { bgp }),
  nodes: [{ name: 'node1', fabric_ip: '192.168.50.11/24' }, { name: 'node2', fabric_ip: '192.168.50.12/24' }],
  networks: [{ name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1' }],
  vms: [{ name: 'vm1', ip: '10.1.1.3', network: 'demo', node: 'node1' }],
  ...extra,
});

test('the bgp section: defaults, and one line naming the field for each bad value', (t) => {
  const tp = topologyFrom(bgpTopo(), 'c.json');
  t.is(tp.routeSource, 'bgp');
  t.deepEqual(tp.bgp?.reflectorsStr, ['192.168.50.254']);
  t.is(tp.bgp?.as, 64512);
  t.is(topologyFrom(bgpTopo({ as: 65000, reflectors: ['192.168.50.2'] }), 'c.json').bgp?.reflectors[0], (192 << 24 | 168 << 16 | 50 << 8 | 2) >>> 0);
  const bad: [unknown, RegExp][] = [
    [{ as: 0 }, /c\.json: bgp\.as: 0: expected an AS number/],
    [{ as: 4294967296 }, /bgp\.as: .*expected an AS number/],
    [{ as: 'x' }, /bgp\.as: "x"/],
    [{ reflectors: ['10.0.0.1'] }, /bgp\.reflectors\[0\]: 10\.0\.0\.1 is not a host address of the fabric subnet 192\.168\.50\.0\/24/],
    [{ reflectors: ['192.168.50.11'] }, /bgp\.reflectors\[0\]: .*node node1's fabric address/],
    [{ reflectors: [] }, /bgp\.reflectors: expected a list/],
    [{ graceful_restart_time: 5000 }, /bgp\.graceful_restart_time/],
    [{ peer: 'x' }, /bgp\.peer: unknown key/],
  ];
  for (const [b, re] of bad) t.regex(userErrorOf(() => topologyFrom(bgpTopo(b), 'c.json')), re);
  t.regex(userErrorOf(() => topologyFrom({ ...(bgpTopo() as object), route_source: 'xmpp' }, 'c.json')), /route_source: "xmpp": expected "static"/);
  t.regex(userErrorOf(() => topologyFrom({ ...(bgpTopo({}) as object), route_source: 'static' }, 'c.json')), /bgp: route_source is "static"/);
});
