/**
 * Nexthops, routes and bridge entries at their own API (vr_nexthop.c, the /32 inet table, the bridge
 * table): nexthop 0 is discard, routes per VRF and /32, deletes, MAC keys and bridge look-ups per VRF.
 */
import test from 'ava';
import { NH_DISCARD, NH_ENCAP, VR_RT_ARP_PROXY_FLAG, bridgeAdd, bridgeLookup, macKey, nhAdd, nhMake, routeTablesCreate, rtAdd, rtDelete, rtLookup } from '../../src/dp/nexthop';
import { macParse } from '../../src/dp/interface';
import { ipKeyWord, ipParse } from '../../src/agent/topology';

const w = (ip: string): number => ipKeyWord(ipParse(ip));

test('a fresh table has the discard nexthop at 0 and nothing else', (t) => {
  const rt = routeTablesCreate();
  t.is(rt.nhs[0]?.type, NH_DISCARD);
  t.is(rt.nhs[0]?.vif, -1);
  t.is(rt.nhs.length, 1);
  t.is(rtLookup(rt, 1, w('10.1.1.3')), undefined);
});

test('nexthops by id; routes by VRF and /32, replaced and deleted', (t) => {
  const rt = routeTablesCreate();
  const dmac = macParse('02:00:0a:01:01:03') as Uint8Array;
  nhAdd(rt, nhMake(10, NH_ENCAP, 3, dmac));
  t.is(rt.nhs[10]?.vif, 3);
  rtAdd(rt, 1, w('10.1.1.3'), { nh: 10, flags: VR_RT_ARP_PROXY_FLAG, label: -1, mac: null });
  t.deepEqual(rtLookup(rt, 1, w('10.1.1.3')), { nh: 10, flags: VR_RT_ARP_PROXY_FLAG, label: -1, mac: null });
  t.is(rtLookup(rt, 2, w('10.1.1.3')), undefined, 'another VRF has its own table');
  t.is(rtLookup(rt, 1, w('10.1.1.4')), undefined, 'host routes only: no prefix match');
  // A key word with the top bit set (an address above 127.x in the key's byte order) is the same key.
  const high = w('10.1.1.200');
  rtAdd(rt, 1, high >>> 0, { nh: 10, flags: 0, label: -1, mac: null });
  t.is(rtLookup(rt, 1, high | 0)?.nh, 10, 'unsigned and signed forms of a word are one key');
  rtAdd(rt, 1, w('10.1.1.3'), { nh: 0, flags: 0, label: -1, mac: null });
  t.is(rtLookup(rt, 1, w('10.1.1.3'))?.nh, 0, 'replaced');
  rtDelete(rt, 1, w('10.1.1.3'));
  t.is(rtLookup(rt, 1, w('10.1.1.3')), undefined);
  t.notThrows(() => rtDelete(rt, 9, w('10.1.1.3')), 'deleting from a VRF without routes');
});

test('macKey is the 48-bit number of the MAC, wherever it sits in a buffer; bridge entries per VRF', (t) => {
  const buf = new Uint8Array([0, 0, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa]);
  t.is(macKey(buf, 2), 0xffeeddccbbaa);
  t.is(macKey(new Uint8Array(6), 0), 0);
  const rt = routeTablesCreate();
  const mac = macParse('02:00:0a:01:01:04') as Uint8Array;
  bridgeAdd(rt, 1, mac, 4);
  const frame = new Uint8Array(14);
  frame.set(mac, 0);
  t.is(bridgeLookup(rt, 1, frame, 0), 4, 'the destination MAC of a frame');
  t.is(bridgeLookup(rt, 2, frame, 0), -1, 'not in another VRF');
  frame[5] ^= 1;
  t.is(bridgeLookup(rt, 1, frame, 0), -1, 'an unknown MAC');
});
