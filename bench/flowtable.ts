/**
 * bench:flowtable — the flow table at the R2.22 default size (vr_flow_entries=524288,
 * vr_oflow_entries=8192) on one core, filled to 50 % of its entries by FLOW_SET adds:
 *  - lookups/s for hits, for misses and for a 50/50 mix, each from the key words as the packet path has
 *    them (the table hashes them with jhash and walks the bucket);
 *  - FLOW_SET adds/s (index −1: EEXIST check, slot claim, entry set-up);
 *  - bytes per entry.
 * Baseline, measured in the same run, alternating rounds: a JavaScript Map keyed by the same 17-byte key
 * as a 17-character string. "Map" builds the string from the same key words at each lookup, as a packet
 * path keyed that way must; "Map, prebuilt keys" uses strings made beforehand (their hashes cached by
 * V8), i.e. the Map's probe alone. Ratios are against "Map".
 *
 * Median of 5 rounds after a warm-up round. The last line is one JSON object with every figure.
 *
 * The C baseline (issue 11): bench/tools/flowlookup.c, built here with gcc -O2, does the same 50 %-hit
 * lookups (jhash, 4-slot bucket, tags, overflow chain) over the very bytes of the table (written out
 * with the keys after the last round), in the same run; its hits must equal ours. Both also run
 * "batched": per burst of BURST keys, hash them all and load each bucket's tag word first, then look
 * them up — whether the misses of a burst can overlap (memory-level parallelism) from JavaScript.
 *
 * Run: npm run bench:flowtable   (bundled like the CLI, node --expose-gc, single thread; gcc for the C figure)
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { flowReqNew, flowSet, FlowResp } from '../src/dp/flow';
import { FE_BUCKET_TAGS, FE_SIZE, FlowTable, flowBucketOf, flowFind, flowFindHashed, flowHash } from '../src/dp/flow-table';
import { createDatapath } from '../src/dp/datapath';
import { MODULE_PARAM_DEFAULTS } from '../src/params/module-params';
import { VR_FLOW_ACTION_FORWARD, VR_FLOW_FLAG_ACTIVE } from '../src/dp/defs';

const N = MODULE_PARAM_DEFAULTS.vr_flow_entries;
const O = MODULE_PARAM_DEFAULTS.vr_oflow_entries;
const LOAD = Math.floor((N + O) / 2);
const LOOKUPS = 2_000_000;
const ROUNDS = 5;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

let seed = 0x2545f491;
function rnd(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed | 0;
}

/** Keys as the table holds them: 4 int32 words (ports, sip, dip, nh) and a protocol. */
interface Keys {
  w: Int32Array;
  p: Uint8Array;
}

function makeKeys(n: number): Keys {
  const w = new Int32Array(n * 4);
  const p = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    w[i * 4] = rnd();
    w[i * 4 + 1] = 0x0a | (rnd() & 0xffffff00);
    w[i * 4 + 2] = 0x0a | (rnd() & 0xffffff00);
    w[i * 4 + 3] = 16;
    p[i] = rnd() & 1 ? 6 : 17;
  }
  return { w, p };
}

/** A sequence of lookups: `hitEvery` 1 = all hits, 0 = all misses, 2 = alternating. */
function makeSeq(ins: Keys, miss: Keys, mode: 'hit' | 'miss' | 'mix'): Keys {
  const w = new Int32Array(LOOKUPS * 4);
  const p = new Uint8Array(LOOKUPS);
  for (let i = 0; i < LOOKUPS; i++) {
    const hit = mode === 'hit' || (mode === 'mix' && (i & 1) === 0);
    const src = hit ? ins : miss;
    const j = hit ? (rnd() >>> 0) % LOAD : i;
    w.set(src.w.subarray(j * 4, j * 4 + 4), i * 4);
    p[i] = src.p[j];
  }
  return { w, p };
}

/** The 17 key bytes as a string (the Map's key). */
function keyString(w: Int32Array, i: number, p: number): string {
  const a = w[i * 4];
  const b = w[i * 4 + 1];
  const c = w[i * 4 + 2];
  const d = w[i * 4 + 3];
  return String.fromCharCode(
    a & 0xff, (a >>> 8) & 0xff, (a >>> 16) & 0xff, a >>> 24,
    b & 0xff, (b >>> 8) & 0xff, (b >>> 16) & 0xff, b >>> 24,
    c & 0xff, (c >>> 8) & 0xff, (c >>> 16) & 0xff, c >>> 24,
    d & 0xff, (d >>> 8) & 0xff, (d >>> 16) & 0xff, d >>> 24,
    p,
  );
}

// The measured loops are functions of their own, so that each is optimized as a whole.
function lookTable(t: FlowTable, s: Keys): number {
  let h = 0;
  const w = s.w;
  const p = s.p;
  for (let i = 0; i < LOOKUPS; i++) if (flowFind(t, w[i * 4], w[i * 4 + 1], w[i * 4 + 2], w[i * 4 + 3], p[i]) >= 0) h++;
  return h;
}

const BURST = 16;
let touched = 0;

/** The same lookups per burst: hash the burst's keys, load each bucket's tag word, then look them up. */
function lookTableBatched(t: FlowTable, s: Keys): number {
  let h = 0;
  const w = s.w;
  const p = s.p;
  const i32 = t.i32;
  const hs = new Int32Array(BURST);
  let touch = 0;
  for (let i = 0; i < LOOKUPS; i += BURST) {
    const e = Math.min(LOOKUPS, i + BURST);
    // Hash first, then touch: a loop of bare loads keeps all of the burst's misses in flight at once.
    for (let j = i; j < e; j++) hs[j - i] = flowHash(w[j * 4], w[j * 4 + 1], w[j * 4 + 2], w[j * 4 + 3], p[j]);
    for (let j = 0; j < e - i; j++) touch |= i32[(flowBucketOf(t, hs[j]) << 5) + (FE_BUCKET_TAGS >> 2)];
    for (let j = i; j < e; j++) if (flowFindHashed(t, hs[j - i], w[j * 4], w[j * 4 + 1], w[j * 4 + 2], w[j * 4 + 3], p[j]) >= 0) h++;
  }
  touched ^= touch;
  return h;
}

/** bench/tools/flowlookup.c over the table's bytes and the mix keys: its lookups/s, plain and batched. */
function cBaseline(t: FlowTable, s: Keys): { plain: number; batched: number; hits: number } | string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vre-flowlookup-'));
  try {
    const bin = path.join(dir, 'flowlookup');
    const src = path.join(__dirname, '..', '..', 'bench', 'tools', 'flowlookup.c');
    const cc = spawnSync('gcc', ['-std=c99', '-O2', '-Wall', '-o', bin, src], { encoding: 'utf8' });
    if (cc.status !== 0) return `gcc failed: ${cc.error?.message ?? cc.stderr}`;
    fs.writeFileSync(path.join(dir, 'table'), new Uint8Array(t.sab, 0, t.total * FE_SIZE));
    const keys = new Int32Array(LOOKUPS * 5);
    for (let i = 0; i < LOOKUPS; i++) {
      keys.set(s.w.subarray(i * 4, i * 4 + 4), i * 5);
      keys[i * 5 + 4] = s.p[i];
    }
    fs.writeFileSync(path.join(dir, 'keys'), new Uint8Array(keys.buffer));
    const r = spawnSync(bin, [path.join(dir, 'table'), String(t.entries), String(t.total), path.join(dir, 'keys'), String(LOOKUPS), String(ROUNDS), String(BURST)], { encoding: 'utf8' });
    if (r.status !== 0) return `flowlookup failed: ${r.stderr}`;
    return JSON.parse(r.stdout) as { plain: number; batched: number; hits: number };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function lookMap(m: Map<string, number>, s: Keys): number {
  let h = 0;
  for (let i = 0; i < LOOKUPS; i++) if (m.get(keyString(s.w, i, s.p[i])) !== undefined) h++;
  return h;
}

function lookMapPrebuilt(m: Map<string, number>, keys: string[]): number {
  let h = 0;
  for (let i = 0; i < LOOKUPS; i++) if (m.get(keys[i]) !== undefined) h++;
  return h;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function rate(n: number, f: () => unknown): number {
  const t0 = performance.now();
  f();
  return n / ((performance.now() - t0) / 1000);
}

const host = { monoMs: () => 0, tx: () => undefined, trap: () => undefined, random32: () => 7 };

function main(): void {
  console.log(`flow table ${N} + ${O} entries (${(((N + O) * FE_SIZE) / 2 ** 20).toFixed(1)} MiB), filled to ${LOAD} entries (50 %)`);
  const ins = makeKeys(LOAD);
  const miss = makeKeys(LOOKUPS);
  const seqs = { hit: makeSeq(ins, miss, 'hit'), miss: makeSeq(ins, miss, 'miss'), mix: makeSeq(ins, miss, 'mix') };
  const mixStrings = Array.from({ length: LOOKUPS }, (_, i) => keyString(seqs.mix.w, i, seqs.mix.p[i]));

  const R: Record<string, number[]> = {};
  const push = (k: string, v: number): void => {
    (R[k] ??= []).push(v);
  };
  let refused = 0;
  let tableBytes = 0;
  let mapBytes = 0;
  let hitsMix = 0;
  let hitsBatched = 0;
  let c: ReturnType<typeof cBaseline> = 'not run';

  for (let round = 0; round <= ROUNDS; round++) {
    const keep = round > 0; // round 0 warms the JIT up
    gc();
    const r = createDatapath(host, { ...MODULE_PARAM_DEFAULTS });
    const q = flowReqNew();
    const resp: FlowResp = { err: 0, index: -1, bytes: 0, packets: 0 };
    q.flags = VR_FLOW_FLAG_ACTIVE;
    q.action = VR_FLOW_ACTION_FORWARD;
    q.vrf = 1;
    refused = 0;
    const add = rate(LOAD, () => {
      for (let i = 0; i < LOAD; i++) {
        q.k0 = ins.w[i * 4];
        q.k1 = ins.w[i * 4 + 1];
        q.k2 = ins.w[i * 4 + 2];
        q.k3 = ins.w[i * 4 + 3];
        q.proto = ins.p[i];
        if (flowSet(r, q, resp).err !== 0) refused++;
      }
    });
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    const m = new Map<string, number>();
    const mapAdd = rate(LOAD, () => {
      for (let i = 0; i < LOAD; i++) m.set(keyString(ins.w, i, ins.p[i]), i);
    });
    gc();
    mapBytes = (process.memoryUsage().heapUsed - heap0) / LOAD;
    tableBytes = r.ft.sab.byteLength / r.ft.total;
    const t = r.ft;
    const res: [string, number][] = [
      ['add', add],
      ['mapAdd', mapAdd],
      ['hit', rate(LOOKUPS, () => lookTable(t, seqs.hit))],
      ['mapHit', rate(LOOKUPS, () => lookMap(m, seqs.hit))],
      ['miss', rate(LOOKUPS, () => lookTable(t, seqs.miss))],
      ['mapMiss', rate(LOOKUPS, () => lookMap(m, seqs.miss))],
      ['mix', rate(LOOKUPS, () => (hitsMix = lookTable(t, seqs.mix)))],
      ['mixBatched', rate(LOOKUPS, () => (hitsBatched = lookTableBatched(t, seqs.mix)))],
      ['mapMix', rate(LOOKUPS, () => lookMap(m, seqs.mix))],
      ['mapMixPrebuilt', rate(LOOKUPS, () => lookMapPrebuilt(m, mixStrings))],
    ];
    if (keep) for (const [k, v] of res) push(k, v);
    if (round === ROUNDS) c = cBaseline(t, seqs.mix);
  }
  if (hitsBatched !== hitsMix) throw new Error(`batched lookups found ${hitsBatched} hits, one at a time ${hitsMix}`);
  if (typeof c !== 'string' && c.hits !== hitsMix) throw new Error(`the C lookups found ${c.hits} hits, ours ${hitsMix}: not the same lookups`);

  const md = (k: string): number => median(R[k]);
  const M = (x: number): string => `${(x / 1e6).toFixed(2).padStart(6)} M/s`;
  const row = (label: string, k: string, b: string): void =>
    console.log(`  ${label.padEnd(26)}${M(md(k))}   Map ${M(md(b))}   ratio ${(md(k) / md(b)).toFixed(2)}`);
  console.log(`  FLOW_SET adds refused (bucket and overflow full): ${refused} of ${LOAD}`);
  row('lookups, hits', 'hit', 'mapHit');
  row('lookups, misses', 'miss', 'mapMiss');
  row('lookups, 50 % hits', 'mix', 'mapMix');
  console.log(`  ${'Map, prebuilt keys (mix)'.padEnd(26)}${M(md('mapMixPrebuilt'))}   (the Map's probe alone)   ${(md('mix') / md('mapMixPrebuilt')).toFixed(2)}`);
  row('inserts (FLOW_SET add)', 'add', 'mapAdd');
  console.log(`  bytes per entry           ${tableBytes.toFixed(0)}   Map ${mapBytes.toFixed(0)} (heap growth per key)`);
  console.log(`  (50 % mix: ${hitsMix} hits of ${LOOKUPS})`);
  if (typeof c === 'string') {
    console.log(`  C baseline: ${c}`);
  } else {
    console.log(`  C (bench/tools/flowlookup.c, gcc -O2), the same 50 % lookups over the table's bytes, ${c.hits} hits:`);
    console.log(`    one at a time             ${M(c.plain)}   ours ${M(md('mix'))}   ratio ${(md('mix') / c.plain).toFixed(2)}`);
    console.log(`    batched by ${BURST}             ${M(c.batched)}   ours ${M(md('mixBatched'))}   ratio ${(md('mixBatched') / c.batched).toFixed(2)}`);
    console.log(`    batching gains: C ${(c.batched / c.plain).toFixed(2)}x, ours ${(md('mixBatched') / md('mix')).toFixed(2)}x`);
  }
  console.log(
    JSON.stringify({
      bench: 'flowtable',
      entries: N,
      oflowEntries: O,
      load: LOAD,
      addsRefused: refused,
      lookupsPerSec: { hits: Math.round(md('hit')), misses: Math.round(md('miss')), mix: Math.round(md('mix')) },
      baselineMapLookupsPerSec: { hits: Math.round(md('mapHit')), misses: Math.round(md('mapMiss')), mix: Math.round(md('mapMix')), mixPrebuiltKeys: Math.round(md('mapMixPrebuilt')) },
      lookupRatio: { hits: +(md('hit') / md('mapHit')).toFixed(2), misses: +(md('miss') / md('mapMiss')).toFixed(2), mix: +(md('mix') / md('mapMix')).toFixed(2), mixVsPrebuilt: +(md('mix') / md('mapMixPrebuilt')).toFixed(2) },
      insertsPerSec: Math.round(md('add')),
      baselineMapInsertsPerSec: Math.round(md('mapAdd')),
      insertRatio: +(md('add') / md('mapAdd')).toFixed(2),
      bytesPerEntry: tableBytes,
      mixBatchedLookupsPerSec: Math.round(md('mixBatched')),
      cLookupsPerSec: typeof c === 'string' ? null : { plain: Math.round(c.plain), batched: Math.round(c.batched) },
      ratioToC: typeof c === 'string' ? null : { plain: +(md('mix') / c.plain).toFixed(2), batched: +(md('mixBatched') / c.batched).toFixed(2) },
      baselineMapBytesPerEntry: Math.round(mapBytes),
      goals: { lookupRatioToC: 0.8, lookupRatio: 3, bytesPerEntry: 128 },
    }),
  );
}

main();
