/**
 * The vCenter driver's state file (VLAN pool and instances, replaced atomically) and the emulated ESXi
 * switch's frame work (tag on the way to the trunk, VLAN of a frame from it).
 */
import test from 'ava';
import fc from 'fast-check';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DriverInstance, DriverState, parseVlanRange } from '../../src/vcenter/driver-state';
import { portMac, portgroupName } from '../../src/vcenter/driver';
import { DVS_NO_PORT, DVS_UNTAGGED, DvSwitch } from '../../src/esxi/dvswitch';
import { UserError } from '../../src/errors';

const tmp = (): string => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vre-drv-')), 'state.json');
const inst = (name: string, vlan: number): DriverInstance => ({
  name, uuid: `u-${name}`, network: 'n', ip: '10.0.0.1', plugged: true, port: { uuid: `p-${name}`, vlan, portgroup: `n-${name}-p`, mac: '02:00:00:00:00:01' },
});

test('the pool hands out the lowest free VLAN, skips VLANs vCenter has, and says when it is exhausted', (t) => {
  const st = DriverState.open(tmp(), { min: 10, max: 13 });
  t.is(st.freeVlan(), 10);
  st.put(inst('a', 10));
  t.is(st.freeVlan(new Set([11])), 12, '11 is a port group\'s in vCenter');
  st.put(inst('b', 12));
  st.put(inst('c', 11));
  st.put(inst('d', 13));
  const e = t.throws(() => st.freeVlan(), { instanceOf: UserError });
  t.regex(e?.message ?? '', /VLAN pool 10-13 exhausted: of its 4 VLANs, 4 are given to instances/);
  st.remove('b');
  t.is(st.freeVlan(), 12, 'a destroyed instance\'s VLAN is free again');
});

test('the state survives a reopen (a driver restart), byte for byte the same VLANs; no temporary file is left', (t) => {
  const f = tmp();
  const st = DriverState.open(f, { min: 100, max: 199 });
  st.put(inst('x', 105));
  st.put(inst('y', 100));
  const again = DriverState.open(f, undefined);
  t.deepEqual(again.instances().map((i) => [i.name, i.port.vlan]), [['y', 100], ['x', 105]]);
  t.deepEqual(again.pool, { min: 100, max: 199 });
  t.deepEqual(fs.readdirSync(path.dirname(f)), ['state.json']);
  t.throws(() => DriverState.open(f, { min: 101, max: 199 }), { message: /instance y has VLAN 100 outside it/ });
});

test('a state file that is not one is refused with its name and the fix', (t) => {
  const f = tmp();
  for (const bad of ['{', '[]', '{"version":1,"pool":{"min":0,"max":5},"instances":[]}', '{"version":1,"pool":{"min":1,"max":5},"instances":[{"name":1}]}']) {
    fs.writeFileSync(f, bad);
    const e = t.throws(() => DriverState.open(f, undefined), { instanceOf: UserError });
    t.true(e?.message.startsWith(`${f}: `), e?.message);
    t.regex(e?.message ?? '', /move (it|the file) away/);
  }
  const two = { version: 1, pool: { min: 1, max: 5 }, instances: [inst('a', 2), inst('b', 2)] };
  fs.writeFileSync(f, JSON.stringify(two));
  t.throws(() => DriverState.open(f, undefined), { message: /VLAN 2 is given to two instances/ });
});

test('VLAN ranges: FIRST-LAST or one VLAN within 1-4094', (t) => {
  t.deepEqual(parseVlanRange('100-199', 'x'), { min: 100, max: 199 });
  t.deepEqual(parseVlanRange('7', 'x'), { min: 7, max: 7 });
  for (const bad of ['0-10', '1-4095', '20-10', 'a-b', '']) t.throws(() => parseVlanRange(bad, '--vlan-pool'), { message: /--vlan-pool .*expected a VLAN range/ });
});

test('port group names and MACs come from the port', (t) => {
  const u = '48b5d0d7-9e3f-43d2-9aef-dffd7bb4e786';
  t.is(portgroupName('demo', 'web', u), `demo-web-${u}`);
  t.is(portMac(u), '02:fd:7b:b4:e7:86');
});

test('property: the switch tags a frame and reads the VLAN back; untagged and port-less VLANs are counted', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 14, maxLength: 300 }), fc.integer({ min: 1, max: 4094 }), (frame, vlan) => {
      const sw = new DvSwitch();
      sw.set(vlan, 9, 3);
      const buf = new Uint8Array(frame.length + 4);
      buf.set(frame, 4);
      const off = sw.tag(buf, 0, frame.length, vlan);
      const ok = off === 0 && buf[12] === 0x81 && buf[13] === 0 && sw.vlanOf(buf, 0, frame.length + 4) === vlan &&
        buf.subarray(0, 12).every((b, i) => b === frame[i]) && buf.subarray(16).every((b, i) => b === frame[12 + i]);
      return ok;
    }),
  );
  const sw = new DvSwitch();
  t.is(sw.vlanOf(new Uint8Array(60), 0, 60), -1);
  t.is(sw.counters[DVS_UNTAGGED], 1);
  const f = new Uint8Array(60);
  f.set([0x81, 0, 0x0f, 0xff], 12); // VLAN 4095: reserved, no port
  t.is(sw.vlanOf(f, 0, 60), -1);
  t.is(sw.counters[DVS_NO_PORT], 1);
  t.false(sw.set(0, 5, 3), 'VLAN 0 is no port group VLAN');
  t.false(sw.set(4095, 5, 3));
});
