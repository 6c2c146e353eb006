/**
 * The introspect's HTTP server on its own: what a hostile or slow client gets (limits on headers,
 * bodies, methods and time), and that close() ends open connections.
 */
import test from 'ava';
import * as net from 'net';
import { IntrospectServer, SERVER_LIMITS, parseListen } from '../../src/introspect/server';
import { UserError } from '../../src/errors';

async function started(limits = SERVER_LIMITS): Promise<{ s: IntrospectServer; port: number }> {
  const s = new IntrospectServer(limits);
  s.use((_req, url, res) => {
    if (url.pathname !== '/ok') return false;
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return true;
  });
  const a = await s.listen('127.0.0.1', 0);
  return { s, port: a.port };
}

/** Send raw bytes; @returns what came back before the server closed (or `waitMs` passed) and whether it closed. */
function raw(port: number, data: string | Buffer, waitMs = 3000): Promise<{ text: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const c = net.connect(port, '127.0.0.1', () => c.write(data));
    let text = '';
    const timer = setTimeout(() => {
      c.destroy();
      resolve({ text, closed: false, ms: Date.now() - t0 });
    }, waitMs);
    c.on('data', (d) => (text += d.toString()));
    c.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true, ms: Date.now() - t0 });
    });
    c.on('error', () => undefined);
  });
}

test('a request answers; unknown pages 404; other methods 405', async (t) => {
  const { s, port } = await started();
  t.regex((await raw(port, 'GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).text, /^HTTP\/1\.1 200 [\s\S]*\r\nok\n/);
  t.regex((await raw(port, 'GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).text, /^HTTP\/1\.1 404 [\s\S]*no such page: \/nope/);
  t.regex((await raw(port, 'DELETE /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).text, /^HTTP\/1\.1 405 /);
  await s.close();
});

test('headers beyond the limit get 431; a body beyond the limit gets 413 and the connection closes', async (t) => {
  const { s, port } = await started({ ...SERVER_LIMITS, maxHeaderBytes: 1024, maxBodyBytes: 1000 });
  const big = await raw(port, `GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4000)}\r\n\r\n`);
  t.regex(big.text, /^HTTP\/1\.1 431 /);
  const body = await raw(port, `GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n${'b'.repeat(5000)}`);
  t.regex(body.text, /^HTTP\/1\.1 413 [\s\S]*request body too large/);
  t.true(body.closed);
  await s.close();
});

test('a client that stops halfway through its request is cut off', async (t) => {
  const { s, port } = await started({ ...SERVER_LIMITS, requestTimeoutMs: 300, idleTimeoutMs: 300 });
  const slow = await raw(port, 'GET /ok HTTP/1.1\r\nHost: x\r\n', 5000);
  t.true(slow.closed, 'closed by the server');
  t.true(slow.ms < 4000, `within the limit (${slow.ms} ms)`);
  await s.close();
});

test('close() ends open keep-alive connections; a taken port is one line naming it', async (t) => {
  const { s, port } = await started();
  const idle = raw(port, 'GET /ok HTTP/1.1\r\nHost: x\r\n\r\n', 5000);
  await new Promise((r) => setTimeout(r, 200));
  await s.close();
  t.true((await idle).closed);
  const { s: s2, port: p2 } = await started();
  const s3 = new IntrospectServer();
  const e = await t.throwsAsync(s3.listen('127.0.0.1', p2), { instanceOf: UserError });
  t.regex(e?.message ?? '', new RegExp(`introspect: cannot listen on 127\\.0\\.0\\.1:${p2} \\(EADDRINUSE\\); give another with --introspect-listen`));
  await s2.close();
  t.deepEqual(parseListen('0.0.0.0', 8085), { host: '0.0.0.0', port: 8085 });
  t.deepEqual(parseListen('127.0.0.1:0', 8085), { host: '127.0.0.1', port: 0 });
  t.throws(() => parseListen('1.2.3.4:99999', 8085), { instanceOf: UserError, message: /--introspect-listen 1\.2\.3\.4:99999: expected ADDRESS\[:PORT\]/ });
});
