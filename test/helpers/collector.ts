/**
 * Collector tests' helpers: a flow record, a temporary directory, a collector (store + server) on a
 * localhost port.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { FlowRecord } from '../../src/agent/flow-export';
import { CollectorServer } from '../../src/collector/server';
import { FlowStore } from '../../src/collector/store';

export function record(k: number, over: Partial<FlowRecord> = {}): FlowRecord {
  return {
    flowuuid: `00000000-0000-4000-8000-${k.toString(16).padStart(12, '0')}`, direction_ing: 1, sourcevn: 'default-domain:admin:blue',
    sourceip: 0x0a02000a, destvn: 'default-domain:admin:red', destip: 0x0a03000a, protocol: 17, sport: 1000 + (k % 100), dport: 53,
    tcp_flags: 0, bytes: 100 * (k + 1), packets: k + 1, diff_bytes: 100, diff_packets: 1, action: 'pass',
    sg_rule_uuid: '00000000-0000-0000-0000-000000000001', nw_ace_uuid: '00000000-0000-0000-0000-000000000001', underlay_source_port: 0, drop_reason: 'UNKNOWN',
    ...over,
  };
}

export function tmpDir(t: { teardown: (f: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-coll-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

export async function collector(dir: string, port = 0) {
  const store = new FlowStore(dir);
  const server = new CollectorServer(store);
  const addr = await server.listen('127.0.0.1', port);
  return { store, server, port: Number(addr.split(':')[1]), close: async () => { await server.close(); store.close(); } };
}

/** A batch of `n` records as the store appends it. */
export const batch = (seq: number, n: number, g = 'g'): { generator: string; seq: number; records: FlowRecord[] } =>
  ({ generator: g, seq, records: Array.from({ length: n }, (_, k) => record(seq * 100 + k)) });
