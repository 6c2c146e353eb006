import test from 'ava';
import fc from 'fast-check';
import { FlowReq, flowReqNew } from '../../src/dp/flow';
import {
  BridgeAddRec, NhAddRec, OP_BRIDGE_ADD, OP_FLOW_SET, OP_NH_ADD, OP_RT_ADD, OP_RT_DEL, OP_STOP, OP_VIF_ADD, OP_VIF_ATTACH, OP_VIF_DEL,
  OP_MPLS_ADD, OP_VIF_DETACH, OP_VIF_FAT, OP_VXLAN_ADD, ringGetMapKey, ringGetMapNh, ringPutMapAdd, RING_FAT_MAX, RING_RECORD, RING_REPLY, Ring, RtRec, VifAddRec, VifAttachRec, ringGetBridgeAdd,
  ringGetFlowSet, ringGetNhAdd, ringGetReply, ringGetRt, ringGetVifAdd, ringGetVifAttach, ringGetVifFatIdx, ringGetVifFatRules,
  ringGetVifRelease, ringOp, ringPutBridgeAdd, ringPutFlowSet, ringPutNhAdd, ringPutReply, ringPutRtAdd, ringPutRtDel, ringPutStop,
  ringPutVifAdd, ringPutVifAttach, ringPutVifFat, ringPutVifRelease, ringReplySeq, ringSeq, OP_PORT_SET, PortSetRec, ringGetPortSet, ringPutPortSet,
} from '../../src/io/ring';

const HDR_WORDS = 16; // the ring's header, before the first record
const CAP = 8;

test('the ring keeps working when its counters wrap past 2^31 and 2^32', (t) => {
  const r = Ring.create(8);
  // Start just before the int32 wrap.
  r.i32[0] = 0x7ffffffc;
  r.i32[1] = 0x7ffffffc;
  let seq = 0;
  let got = 0;
  for (let round = 0; round < 20; round++) {
    for (let k = 0; k < 8; k++) {
      const o = r.reserve();
      t.true(o >= 16, `offset ${o}`);
      r.i32[o] = ++seq;
      r.push();
    }
    t.is(r.reserve(), -1, 'full at capacity');
    for (let k = 0; k < 8; k++) {
      const o = r.peek();
      t.is(r.i32[o], ++got);
      r.pop();
    }
    t.is(r.peek(), -1, 'empty');
  }
  t.throws(() => Ring.create(6), { instanceOf: RangeError });
});

// ---------------------------------------------------------------------------------------------------
// The codec: every op through put and get, written where the ring is about to wrap.

const i32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 });

/** A ring whose next record is its last slot (the wrap point) with the counters about to wrap at 2^32, other words poisoned. */
function ringAtWrap(): Ring {
  const r = Ring.create(CAP);
  r.i32.fill(0x5a5a5a5a, HDR_WORDS);
  r.i32[0] = -1; // head = tail = 2^32 − 1: the next record goes to slot (2^32 − 1) & 7 = 7, then the counters wrap to 0
  r.i32[1] = -1;
  return r;
}

/** Write one record with `put` at the wrap point, publish it, and hand the consumer's offset to `check`. */
function throughRing(t: import('ava').ExecutionContext, put: (a: Int32Array, o: number) => void, check: (a: Int32Array, o: number) => void): void {
  const r = ringAtWrap();
  const before = Int32Array.from(r.i32);
  const o = r.reserve();
  t.is(o, HDR_WORDS + (CAP - 1) * RING_RECORD, 'the last slot');
  t.is(o + RING_RECORD, r.i32.length, 'which ends where the buffer does');
  put(r.i32, o);
  // Nothing outside the record's slot changed (the header only through push/pop).
  for (let k = HDR_WORDS; k < o; k++) if (r.i32[k] !== before[k]) t.fail(`word ${k} outside the record changed`);
  r.push();
  t.is(r.i32[1], 0, 'the tail wrapped to 0');
  const c = r.peek();
  t.is(c, o);
  check(r.i32, c);
  r.pop();
  t.is(r.peek(), -1);
  t.is(r.reserve(), HDR_WORDS, 'and the next record goes to the first slot');
}

const flowReqArb = fc.record({
  index: i32, rindex: i32, action: i32, flags: i32, k0: i32, k1: i32, k2: i32, k3: i32, proto: i32, vrf: i32, dvrf: i32, mirId: i32,
  secMirId: i32, ecmpNhIndex: i32, srcNhIndex: i32, dropReason: i32,
}) as fc.Arbitrary<FlowReq>;

test('FLOW_SET round-trips every field', (t) => {
  const q = flowReqNew();
  fc.assert(
    fc.property(i32, flowReqArb, (seq, req) => {
      throughRing(t, (a, o) => ringPutFlowSet(a, o, seq, req), (a, o) => {
        t.is(ringOp(a, o), OP_FLOW_SET);
        t.is(ringSeq(a, o), seq);
        ringGetFlowSet(a, o, q);
        t.deepEqual(q, req);
      });
    }),
  );
});

test('the FLOW_SET get reuses the request it is given (no allocation per record)', (t) => {
  const a = new Int32Array(RING_RECORD);
  const q = flowReqNew();
  ringPutFlowSet(a, 0, 7, { ...flowReqNew(), index: 12, k1: 0x0a000001 });
  const shape = Object.keys(q);
  ringGetFlowSet(a, 0, q);
  t.deepEqual(Object.keys(q), shape);
  t.is(q.index, 12);
  t.is(q.k1, 0x0a000001);
});

test('VIF_ADD round-trips', (t) => {
  const v: VifAddRec = { idx: 0, fd: 0, type: 0, vrf: 0, nh: 0, flags: 0, mtu: 0, mac: new Uint8Array(6), io: 0, ip: 0, parent: 0, vlan: 0, ovlan: 0 };
  fc.assert(
    fc.property(fc.record({ idx: i32, fd: i32, type: i32, vrf: i32, nh: i32, flags: i32, mtu: i32, mac, io: i32, ip: i32, parent: i32, vlan: i32, ovlan: i32 }), (w) => {
      throughRing(t, (a, o) => ringPutVifAdd(a, o, w.idx, w.fd, w.type, w.vrf, w.nh, w.flags, w.mtu, w.mac, w.io, w.ip, w.parent, w.vlan, w.ovlan), (a, o) => {
        t.is(ringOp(a, o), OP_VIF_ADD);
        t.is(ringSeq(a, o), 0);
        ringGetVifAdd(a, o, v);
        t.deepEqual({ ...v, mac: Array.from(v.mac) }, { ...w, mac: Array.from(w.mac) });
      });
    }),
  );
});

test('PORT_SET round-trips', (t) => {
  const p: PortSetRec = { vlan: 0, fd: 0, trunk: 0, io: 0 };
  fc.assert(
    fc.property(i32, i32, i32, i32, i32, (seq, vlan, fd, trunk, io) => {
      throughRing(t, (a, o) => ringPutPortSet(a, o, seq, vlan, fd, trunk, io), (a, o) => {
        t.is(ringOp(a, o), OP_PORT_SET);
        t.is(ringSeq(a, o), seq);
        ringGetPortSet(a, o, p);
        t.deepEqual(p, { vlan, fd, trunk, io });
      });
    }),
  );
});

test('VIF_ATTACH round-trips', (t) => {
  const v: VifAttachRec = { idx: 0, fd: 0, io: 0 };
  fc.assert(
    fc.property(i32, i32, i32, (idx, fd, io) => {
      throughRing(t, (a, o) => ringPutVifAttach(a, o, idx, fd, io), (a, o) => {
        t.is(ringOp(a, o), OP_VIF_ATTACH);
        ringGetVifAttach(a, o, v);
        t.deepEqual(v, { idx, fd, io });
      });
    }),
  );
});

test('VIF_DEL and VIF_DETACH round-trip with their seq', (t) => {
  fc.assert(
    fc.property(fc.constantFrom(OP_VIF_DEL, OP_VIF_DETACH), i32, i32, (op, seq, idx) => {
      throughRing(t, (a, o) => ringPutVifRelease(a, o, op, seq, idx), (a, o) => {
        t.is(ringOp(a, o), op);
        t.is(ringSeq(a, o), seq);
        t.is(ringGetVifRelease(a, o), idx);
      });
    }),
  );
});

test('NH_ADD round-trips', (t) => {
  const n: NhAddRec = { id: 0, type: 0, vif: 0, dmac: new Uint8Array(6), flags: 0, sip: 0, dip: 0, vrf: 0 };
  fc.assert(
    fc.property(i32, i32, i32, mac, fc.tuple(i32, i32, i32, i32), (id, type, vif, dmac, [flags, sip, dip, vrf]) => {
      throughRing(t, (a, o) => ringPutNhAdd(a, o, id, type, vif, dmac, flags, sip, dip, vrf), (a, o) => {
        t.is(ringOp(a, o), OP_NH_ADD);
        ringGetNhAdd(a, o, n);
        t.deepEqual([n.id, n.type, n.vif, Array.from(n.dmac), n.flags, n.sip, n.dip, n.vrf], [id, type, vif, Array.from(dmac), flags, sip, dip, vrf]);
      });
    }),
  );
});

test('RT_ADD and RT_DEL round-trip', (t) => {
  const rt: RtRec = { vrf: 0, ip: 0, nh: 0, flags: 0, label: -1, hasMac: false, mac: new Uint8Array(6) };
  fc.assert(
    fc.property(i32, i32, i32, i32, i32, fc.option(mac, { nil: null }), (vrf, ip, nh, flags, label, m) => {
      throughRing(t, (a, o) => ringPutRtAdd(a, o, vrf, ip, nh, flags, label, m), (a, o) => {
        t.is(ringOp(a, o), OP_RT_ADD);
        ringGetRt(a, o, rt);
        t.deepEqual([rt.vrf, rt.ip, rt.nh, rt.flags, rt.label, rt.hasMac], [vrf, ip, nh, flags, label, m !== null]);
        if (m !== null) t.deepEqual(Array.from(rt.mac), Array.from(m));
      });
      throughRing(t, (a, o) => ringPutRtDel(a, o, vrf, ip), (a, o) => {
        t.is(ringOp(a, o), OP_RT_DEL);
        ringGetRt(a, o, rt);
        t.deepEqual([rt.vrf, rt.ip], [vrf, ip]);
      });
    }),
  );
});

test('BRIDGE_ADD round-trips', (t) => {
  const b: BridgeAddRec = { vrf: 0, mac: new Uint8Array(6), vif: 0, nh: 0, label: 0 };
  fc.assert(
    fc.property(i32, mac, i32, i32, i32, (vrf, m, vif, nh, label) => {
      throughRing(t, (a, o) => ringPutBridgeAdd(a, o, vrf, m, vif, nh, label), (a, o) => {
        t.is(ringOp(a, o), OP_BRIDGE_ADD);
        ringGetBridgeAdd(a, o, b);
        t.deepEqual([b.vrf, Array.from(b.mac), b.vif, b.nh, b.label], [vrf, Array.from(m), vif, nh, label]);
      });
    }),
  );
});

test('MPLS_ADD and VXLAN_ADD round-trip', (t) => {
  fc.assert(
    fc.property(fc.constantFrom(OP_MPLS_ADD, OP_VXLAN_ADD), i32, i32, (op, key, nh) => {
      throughRing(t, (a, o) => ringPutMapAdd(a, o, op, key, nh), (a, o) => {
        t.is(ringOp(a, o), op);
        t.deepEqual([ringGetMapKey(a, o), ringGetMapNh(a, o)], [key, nh]);
      });
    }),
  );
});

test('VIF_FAT round-trips 0 to 28 rules, and refuses 29 without writing', (t) => {
  t.is(RING_FAT_MAX, 28);
  fc.assert(
    fc.property(i32, fc.array(i32, { maxLength: RING_FAT_MAX }), (idx, rules) => {
      throughRing(t, (a, o) => ringPutVifFat(a, o, idx, rules), (a, o) => {
        t.is(ringOp(a, o), OP_VIF_FAT);
        t.is(ringGetVifFatIdx(a, o), idx);
        t.deepEqual(Array.from(ringGetVifFatRules(a, o)), rules);
      });
    }),
  );
  const a = new Int32Array(RING_RECORD);
  t.throws(() => ringPutVifFat(a, 0, 3, new Array<number>(RING_FAT_MAX + 1).fill(6 << 16)), { instanceOf: RangeError, message: /29 fat-flow rules/ });
  t.true(a.every((x) => x === 0));
});

test('STOP round-trips', (t) => {
  throughRing(t, (a, o) => ringPutStop(a, o), (a, o) => {
    t.is(ringOp(a, o), OP_STOP);
    t.is(ringSeq(a, o), 0);
  });
});

test('every op has a distinct number', (t) => {
  const ops = [OP_FLOW_SET, OP_VIF_ADD, OP_VIF_DEL, OP_NH_ADD, OP_RT_ADD, OP_RT_DEL, OP_BRIDGE_ADD, OP_STOP, OP_VIF_FAT, OP_VIF_ATTACH, OP_VIF_DETACH];
  t.is(new Set(ops).size, ops.length);
  t.false(ops.includes(0), 'a zeroed slot is no op');
});

test('replies round-trip, packed back to back', (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(i32, i32, i32, i32, i32), { minLength: 1, maxLength: 20 }), (rs) => {
      const b = new Int32Array(rs.length * RING_REPLY);
      rs.forEach(([seq, err, index, bytes, packets], k) => ringPutReply(b, k * RING_REPLY, seq, err, index, bytes, packets));
      const out = { err: 0, index: 0, bytes: 0, packets: 0 };
      rs.forEach(([seq, err, index, bytes, packets], k) => {
        t.is(ringReplySeq(b, k * RING_REPLY), seq);
        t.is(ringGetReply(b, k * RING_REPLY, out), out);
        t.deepEqual(out, { err, index, bytes, packets });
      });
    }),
  );
});

test('records keep their order and contents across the wrap, a full ring at a time', (t) => {
  const r = ringAtWrap();
  const q = flowReqNew();
  let sent = 0;
  let got = 0;
  for (let round = 0; round < 3; round++) {
    for (let o = r.reserve(); o >= 0; o = r.reserve()) {
      ringPutFlowSet(r.i32, o, ++sent, { ...flowReqNew(), index: sent * 3, k0: -sent, dropReason: sent & 0xff });
      r.push();
    }
    t.is(sent - got, CAP);
    for (let o = r.peek(); o >= 0; o = r.peek()) {
      got++;
      t.is(ringSeq(r.i32, o), got);
      ringGetFlowSet(r.i32, o, q);
      t.deepEqual([q.index, q.k0, q.dropReason], [got * 3, -got, got & 0xff]);
      r.pop();
    }
  }
  t.is(got, 3 * CAP);
});
