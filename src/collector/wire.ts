/**
 * The agent ↔ collector protocol: newline-delimited JSON over TCP (the 2.22 agent spoke Sandesh, XML
 * framed, to port 8086; the emulator keeps the port and the record, FlowDataIpv4, and adds what a
 * durable testbed collector needs: sequence numbers and acknowledgements).
 *
 *   agent → collector   {"hello": {"generator": "<host>:vrouter-emu:<pid>:<nonce>", "v": 1}}   once, first
 *                       {"seq": N, "records": [FlowDataIpv4, …]}                               N = 1, 2, …
 *   collector → agent   {"ack": N}    every message up to N is on disk (fsync'ed)
 *
 * A line longer than MAX_LINE, or one that is not such a message, closes the connection.
 * @module
 */
import type { FlowRecord } from '../agent/flow-export';

export const PROTOCOL_VERSION = 1;
/** The longest line either side accepts (bytes). */
export const MAX_LINE = 1 << 20;
/** Records per message the exporter sends at most. */
export const MAX_BATCH = 256;
/** The collector's port (CollectorPort). */
export const COLLECTOR_PORT = 8086;

export interface Hello {
  generator: string;
  v: number;
}

export interface Batch {
  seq: number;
  records: FlowRecord[];
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const STRING_FIELDS = ['flowuuid', 'sourcevn', 'destvn', 'action', 'sg_rule_uuid', 'nw_ace_uuid', 'drop_reason'] as const;
const NUMBER_FIELDS = ['direction_ing', 'sourceip', 'destip', 'protocol', 'sport', 'dport', 'tcp_flags', 'bytes', 'packets', 'diff_bytes', 'diff_packets'] as const;

/** Whether `r` has the fields of a FlowDataIpv4 record with the right types. */
export function isFlowRecord(r: unknown): r is FlowRecord {
  if (!isObj(r)) return false;
  for (const f of STRING_FIELDS) if (typeof r[f] !== 'string') return false;
  for (const f of NUMBER_FIELDS) if (typeof r[f] !== 'number' || !Number.isFinite(r[f] as number)) return false;
  return true;
}

/** A hello message, or undefined. */
export function parseHello(v: unknown): Hello | undefined {
  if (!isObj(v) || !isObj(v.hello)) return undefined;
  const h = v.hello;
  if (typeof h.generator !== 'string' || h.generator.length === 0 || h.generator.length > 256 || h.v !== PROTOCOL_VERSION) return undefined;
  return { generator: h.generator, v: h.v };
}

/** A batch message, or undefined (a record that is not a FlowDataIpv4 makes the whole message bad). */
export function parseBatch(v: unknown): Batch | undefined {
  if (!isObj(v) || typeof v.seq !== 'number' || !Number.isSafeInteger(v.seq) || v.seq < 1 || !Array.isArray(v.records)) return undefined;
  if (v.records.length > MAX_BATCH || !v.records.every(isFlowRecord)) return undefined;
  return { seq: v.seq, records: v.records as FlowRecord[] };
}

/**
 * Split a stream into lines: feed chunks, get complete lines; a line over MAX_LINE is an error.
 */
export class LineReader {
  private parts: Buffer[] = [];
  private size = 0;

  /** Bytes of a line begun and not yet complete. */
  get buffered(): number {
    return this.size;
  }

  /** @returns the complete lines in `chunk` (with what came before), or null when a line is too long. */
  push(chunk: Buffer): string[] | null {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      if (this.size + piece.length > MAX_LINE) return null;
      this.parts.push(piece);
      lines.push(Buffer.concat(this.parts).toString('utf8'));
      this.parts = [];
      this.size = 0;
      start = nl + 1;
    }
    const rest = chunk.subarray(start);
    if (this.size + rest.length > MAX_LINE) return null;
    if (rest.length > 0) {
      this.parts.push(Buffer.from(rest));
      this.size += rest.length;
    }
    return lines;
  }
}
