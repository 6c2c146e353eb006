/**
 * The control socket (src/cli/control.ts) under hostile clients (issue 16): garbage, JSON of the wrong
 * shape, a huge line, no newline, binary, then a hang-up. The server answers with one status line or
 * closes that connection, keeps no unbounded buffer, and serves the next good client. And the client
 * side: an answer that is not a status line is a UserError.
 */
import test from 'ava';
import fc from 'fast-check';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { ControlServer, controlCall, controlServe } from '../../src/cli/control';
import { isUserError } from '../../src/errors';
import { Exchange, FC, exchange as sendHostile } from './helpers';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-control-'));
const sock = path.join(dir, 'run', 'vrouter.sock');
let server: ControlServer;

test.before(async () => {
  server = await controlServe(sock, async (argv, out) => {
    await out(`ran ${argv.join(' ')}\n`);
  }, { requestMs: 500 });
});
test.after.always(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Send `chunks`, then stop sending (hanging up unless told not to); the answer until close. */
function exchange(chunks: Buffer[], hangUp = true, limitMs = 5000): Promise<Exchange> {
  return sendHostile({ path: sock }, chunks, hangUp, limitMs);
}

/** The answer is nothing (closed) or one status line, status 2 with an error of one line. */
function refusedOrClosed(a: string): boolean {
  if (a === '') return true;
  const nl = a.indexOf('\n');
  if (nl !== a.length - 1) return false;
  const h = JSON.parse(a.slice(0, nl)) as { status: number; error?: string };
  return h.status === 2 && typeof h.error === 'string' && !h.error.includes('\n') && h.error.length < 200;
}

async function goodClientWorks(): Promise<boolean> {
  let out = '';
  await controlCall(sock, ['vif', '--list'], (s) => (out += s));
  return out === 'ran vif --list\n';
}

test.serial('a good request is served', async (t) => {
  t.true(await goodClientWorks());
});

test.serial('hostile request lines get one error line, and the server serves on', async (t) => {
  const line = fc.oneof(
    fc.string({ maxLength: 50 }),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.constantFrom('null', '[]', '{}', '{"argv": "flow"}', '{"argv": [1, 2]}', '{"argv": null}', '{"__proto__": {"argv": ["x"]}}', '{"argv": [{}]}', '"argv"', '1e999'),
    fc.integer({ min: 1000, max: 30000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  );
  await fc.assert(fc.asyncProperty(line, async (l) => {
    const e = await exchange([Buffer.from(l.replace(/\n/g, ' ') + '\n', 'latin1')]);
    if (e.answer.startsWith('{"status":0}')) return true; // happened to be a valid request
    return refusedOrClosed(e.answer) && e.ms < 1000;
  }), { ...FC, numRuns: 100 });
  t.true(await goodClientWorks());
});

test.serial('truncated requests, hung up, are closed', async (t) => {
  const req = JSON.stringify({ argv: ['flow', '-l'] });
  for (let i = 0; i < req.length; i++) {
    const e = await exchange([Buffer.from(req.slice(0, i))]);
    t.true(refusedOrClosed(e.answer), `truncated at ${i}: ${e.answer}`);
  }
  t.true(await goodClientWorks());
});

test.serial('a 10 MB line without a newline is cut off, not buffered', async (t) => {
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  const e = await exchange(Array.from({ length: 160 }, () => chunk));
  t.true(refusedOrClosed(e.answer), e.answer);
  t.regex(e.answer, /longer than/);
  t.true(e.written < 10 * 1024 * 1024, `the server read ${e.written} bytes`);
  t.true(await goodClientWorks());
});

test.serial('regression: data after a refused request is not buffered without bound', async (t) => {
  // The server used to append everything that followed a malformed first line to its buffer.
  const chunk = Buffer.alloc(64 * 1024, 0x42);
  const e = await exchange([Buffer.from('garbage\n'), ...Array.from({ length: 160 }, () => chunk)], false);
  t.true(refusedOrClosed(e.answer), e.answer);
  t.true(await goodClientWorks());
});

test.serial('regression: a client that sends half a request and waits is closed after the request timeout', async (t) => {
  const e = await exchange([Buffer.from('{"argv": ["fl')], false, 3000);
  t.is(e.answer, '');
  t.true(e.ms >= 400 && e.ms < 2000, `${e.ms} ms`);
  t.true(await goodClientWorks());
});

test.serial('regression: a long line that arrives with its newline in one chunk is refused', async (t) => {
  const e = await exchange([Buffer.from(JSON.stringify({ argv: ['x'.repeat(200000)] }) + '\n')]);
  t.regex(e.answer, /longer than/);
});

/** A socket that answers every connection with `answer`, then closes. */
async function fakeInstance(answer: Buffer | null): Promise<{ path: string; close: () => Promise<void> }> {
  const p = path.join(dir, `fake-${Math.random().toString(16).slice(2)}.sock`);
  const conns = new Set<net.Socket>();
  const s = net.createServer((c) => {
    conns.add(c);
    c.on('error', () => undefined);
    if (answer === null) {
      // An endless status line.
      const chunk = Buffer.alloc(64 * 1024, 0x43);
      const pump = (): void => {
        while (!c.destroyed && c.write(chunk));
        if (!c.destroyed) c.once('drain', pump);
      };
      pump();
    } else c.end(answer);
  });
  await new Promise<void>((r) => s.listen(p, r));
  return {
    path: p,
    close: () => new Promise<void>((r) => {
      for (const c of conns) c.destroy();
      s.close(() => r());
    }),
  };
}

test.serial('regression: controlCall: an answer that is not a status line is a UserError, not an exception', async (t) => {
  for (const a of [Buffer.from('HTTP/1.0 400 Bad Request\r\n\r\n'), Buffer.from('null\n'), Buffer.from('[1]\n'), Buffer.from([0xff, 0x00, 0x0a]), null]) {
    const f = await fakeInstance(a);
    const err = await controlCall(f.path, ['flow', '-l'], () => undefined).then(() => undefined, (e: unknown) => e);
    t.true(isUserError(err), String(err));
    t.false(String((err as Error).message).includes('\n'));
    await f.close();
  }
});

test.serial('controlCall: the instance\'s error line is kept on one line', async (t) => {
  const f = await fakeInstance(Buffer.from(JSON.stringify({ status: 2, error: 'bad\nthing' }) + '\n'));
  const err = await controlCall(f.path, ['x'], () => undefined).then(() => undefined, (e: unknown) => e);
  t.true(isUserError(err));
  t.false((err as Error).message.includes('\n'));
  await f.close();
});
