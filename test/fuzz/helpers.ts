import fc from 'fast-check';
import * as net from 'net';
import { isUserError } from '../../src/errors';

/** Fixed so that every run tries the same inputs. */
export const FC = { seed: 0x16, numRuns: 150 } as const;

/** Time one call may take (ms). */
export const CALL_MS = 1000;

/**
 * Run `f`: it returns, or throws a UserError whose message is one short line naming `name`.
 * @returns the problem, or '' when all is well.
 */
export function checkCall(f: () => unknown, name: string | RegExp): string {
  const t0 = Date.now();
  let problem = '';
  try {
    f();
  } catch (e) {
    if (!isUserError(e)) return `threw ${(e as Error)?.name}: ${String((e as Error)?.message).slice(0, 200)}`;
    const m = e.message;
    if (/[\r\n]/.test(m)) problem = `multi-line message: ${JSON.stringify(m.slice(0, 200))}`;
    else if (m.length > 400) problem = `message of ${m.length} characters`;
    else if (typeof name === 'string' ? !m.includes(name) : !name.test(m)) problem = `message does not name ${String(name)}: ${m}`;
  }
  const ms = Date.now() - t0;
  if (ms > CALL_MS) problem ||= `took ${ms} ms`;
  return problem;
}

/** Byte-level mutations of a valid text: flips, insertions, deletions. */
export function mutated(valid: string): fc.Arbitrary<string> {
  const b = Buffer.from(valid, 'utf8');
  const op = fc.oneof(
    fc.record({ k: fc.constant('flip' as const), at: fc.nat(b.length - 1), bit: fc.nat(7) }),
    fc.record({ k: fc.constant('ins' as const), at: fc.nat(b.length), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ k: fc.constant('del' as const), at: fc.nat(b.length - 1), n: fc.integer({ min: 1, max: 8 }) }),
  );
  return fc.array(op, { minLength: 1, maxLength: 6 }).map((ops) => {
    let x = Buffer.from(b);
    for (const o of ops) {
      const at = Math.min(o.at, x.length);
      if (o.k === 'flip' && at < x.length) x[at] ^= 1 << o.bit;
      else if (o.k === 'ins') x = Buffer.concat([x.subarray(0, at), Buffer.from(o.bytes), x.subarray(at)]);
      else if (o.k === 'del') x = Buffer.concat([x.subarray(0, at), x.subarray(at + o.n)]);
    }
    return x.toString('utf8');
  });
}

/** Hostile JSON values: wrong types, huge numbers, NaN-like strings, deep nesting, huge strings, prototype keys. */
export function hostileValue(): fc.Arbitrary<unknown> {
  const deep = fc.integer({ min: 1000, max: 20000 }).map((n) => JSON.parse('['.repeat(n) + ']'.repeat(n)) as unknown);
  const deepObj = fc.integer({ min: 1000, max: 20000 }).map((n) => JSON.parse('{"a":'.repeat(n) + '1' + '}'.repeat(n)) as unknown);
  return fc.oneof(
    fc.constantFrom<unknown>(null, true, false, 0, -1, 1e308, -1e308, Infinity, 2 ** 53 + 1, 0.5, 'NaN', 'Infinity', '-0', '1e999', '0x10', '', ' ', '\n', '\u0000'),
    fc.string({ maxLength: 20 }),
    fc.integer(),
    fc.double(),
    fc.constant('x\ny'.repeat(1)),
    fc.integer({ min: 1e5, max: 1e6 }).map((n) => 'A'.repeat(n) + '\n'),
    deep,
    deepObj,
    fc.constant(JSON.parse('{"__proto__": {"polluted": 1}, "constructor": {"prototype": {}}}') as unknown),
    fc.array(fc.integer(), { maxLength: 5 }),
    fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'name', 'x'), fc.oneof(fc.integer(), fc.string({ maxLength: 5 }))),
  );
}

/** `base` with the value at `path` replaced, or an unknown/prototype key added. */
export function withValue(base: unknown, path: (string | number)[], v: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  let o: Record<string, unknown> = copy;
  for (let i = 0; i < path.length - 1; i++) o = o[path[i]] as Record<string, unknown>;
  Object.defineProperty(o, path[path.length - 1], { value: v, enumerable: true, writable: true, configurable: true });
  return copy;
}

/** What a hostile client got back. */
export interface Exchange {
  answer: string;
  ms: number;
  /** Bytes the client could write before the server closed (or all of them). */
  written: number;
}

/**
 * Connect to `to` (a Unix socket path or a loopback TCP port), send `chunks`, then stop sending but keep
 * the connection open unless `hangUp`; collect the answer until the server closes. Rejects when the
 * server neither closes nor answers within `limitMs`.
 */
export function exchange(to: net.NetConnectOpts, chunks: Buffer[], hangUp: boolean, limitMs = 5000): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const c = net.connect(to);
    let answer = '';
    let written = 0;
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`not closed within ${limitMs} ms (answer ${JSON.stringify(answer.slice(0, 200))})`));
    }, limitMs);
    c.on('data', (d) => (answer += d.toString('utf8')));
    c.on('error', () => undefined);
    c.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, ms: Date.now() - t0, written });
    });
    c.once('connect', async () => {
      for (const ch of chunks) {
        if (c.destroyed || c.writableEnded) break;
        const ok = c.write(ch);
        written += ch.length;
        if (!ok) await new Promise<void>((r) => { c.once('drain', r); c.once('close', r); });
      }
      if (hangUp && !c.destroyed) c.end();
    });
  });
}
