/**
 * Headless Chromium driven over the DevTools protocol, with no npm dependency (puppeteer would download
 * a browser): Debian's `chromium --headless --remote-debugging-port=0`, the page target from /json/list,
 * and a minimal WebSocket client (RFC 6455: masked text frames out; text, continuation, ping and close
 * frames in) over Node's http upgrade. Enough for Page.navigate, Runtime.evaluate, Input.insertText and
 * Page.captureScreenshot.
 *
 *   const b = await launchChromium();
 *   try { await b.navigate(url); await b.waitFor('document.title !== ""'); } finally { await b.close(); }
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import type { Socket } from 'net';
import { spawn } from 'child_process';

/** One WebSocket connection (client side). */
class WebSocketClient {
  private buf: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  onMessage: (s: string) => void = () => undefined;
  onClose: () => void = () => undefined;

  private constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => this.feed(d));
    sock.on('close', () => this.onClose());
    sock.on('error', () => undefined);
  }

  static connect(url: string): Promise<WebSocketClient> {
    const u = new URL(url);
    const key = crypto.randomBytes(16).toString('base64');
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: u.hostname, port: u.port, path: u.pathname + u.search,
        headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13' },
      });
      req.on('upgrade', (res, sock, head) => {
        const want = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        if (res.headers['sec-websocket-accept'] !== want) {
          sock.destroy();
          reject(new Error(`${url}: bad Sec-WebSocket-Accept`));
          return;
        }
        const ws = new WebSocketClient(sock);
        if (head.length > 0) ws.feed(head);
        resolve(ws);
      });
      req.on('response', (res) => reject(new Error(`${url}: HTTP ${res.statusCode} instead of an upgrade`)));
      req.on('error', reject);
      req.end();
    });
  }

  private feed(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0];
      const b1 = this.buf[1];
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      const maskOff = off;
      if (masked) off += 4;
      if (this.buf.length < off + len) return;
      const payload = Buffer.from(this.buf.subarray(off, off + len));
      if (masked) for (let k = 0; k < payload.length; k++) payload[k] ^= this.buf[maskOff + (k & 3)];
      this.buf = this.buf.subarray(off + len);
      const op = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (op === 0x1 || op === 0x0) {
        this.parts.push(payload);
        if (fin) {
          const s = Buffer.concat(this.parts).toString('utf8');
          this.parts = [];
          this.onMessage(s);
        }
      } else if (op === 0x9) {
        this.frame(0xa, payload);
      } else if (op === 0x8) {
        this.sock.end();
      }
    }
  }

  private frame(op: number, payload: Buffer): void {
    const mask = crypto.randomBytes(4);
    const len = payload.length;
    const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
    head[0] = 0x80 | op;
    if (len < 126) head[1] = 0x80 | len;
    else if (len < 65536) {
      head[1] = 0x80 | 126;
      head.writeUInt16BE(len, 2);
    } else {
      head[1] = 0x80 | 127;
      head.writeBigUInt64BE(BigInt(len), 2);
    }
    const body = Buffer.from(payload);
    for (let k = 0; k < body.length; k++) body[k] ^= mask[k & 3];
    this.sock.write(Buffer.concat([head, mask, body]));
  }

  send(s: string): void {
    this.frame(0x1, Buffer.from(s, 'utf8'));
  }

  close(): void {
    this.sock.destroy();
  }
}

function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http.get(url, (r) => {
      let s = '';
      r.setEncoding('utf8');
      r.on('data', (d: string) => (s += d));
      r.on('end', () => {
        try {
          resolve(JSON.parse(s));
        } catch (e) {
          reject(e);
        }
      });
    }).on('error', reject);
  });
}

export interface Browser {
  /** A DevTools command on the page; @returns its result. @throws the protocol's error. */
  send(method: string, params?: object): Promise<Record<string, unknown>>;
  /** Evaluate an expression in the page (promises awaited); @returns its value (JSON). */
  evaluate<T = unknown>(expression: string): Promise<T>;
  /** Poll an expression until it is truthy. @throws naming `what` after timeoutMs. */
  waitFor(expression: string, what: string, timeoutMs?: number): Promise<void>;
  /** Navigate and wait for the load event. */
  navigate(url: string): Promise<void>;
  /** Focus the element of `selector`, clear it, and type `text` (Input.insertText: real input events). */
  type(selector: string, text: string): Promise<void>;
  /** Write a PNG of the page to `file`. */
  screenshot(file: string): Promise<void>;
  /** Chromium's stderr so far (for failure messages). */
  log(): string;
  close(): Promise<void>;
}

/** Start headless Chromium (a temporary profile, removed at close) with a page of width × height. */
export async function launchChromium(o: { width?: number; height?: number; bin?: string } = {}): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-chromium-'));
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
    '--disable-extensions', '--disable-background-networking', '--disable-component-update', '--hide-scrollbars', '--mute-audio',
    `--user-data-dir=${profile}`, '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0',
    `--window-size=${o.width ?? 1280},${o.height ?? 1100}`, 'about:blank',
  ];
  // Its own process group: Chromium's helper processes (renderer, GPU, crash handler) go with it.
  const proc = spawn(o.bin ?? 'chromium', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let err = '';
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const cleanup = async (): Promise<void> => {
    const group = (sig: NodeJS.Signals): void => {
      try {
        process.kill(-(proc.pid as number), sig);
      } catch {
        // the group is gone
      }
    };
    if (proc.exitCode === null && proc.signalCode === null) {
      group('SIGTERM');
      const t = setTimeout(() => group('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    group('SIGKILL'); // helpers that outlived the browser process
    // A helper may still be writing the profile as it exits: removal retries (ENOTEMPTY) for a while.
    fs.rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  };
  try {
    const wsBrowser = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`chromium did not open its DevTools port in 30 s:\n${err}`)), 30_000);
      proc.stderr?.setEncoding('utf8');
      proc.stderr?.on('data', (d: string) => {
        err += d;
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      proc.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`chromium exited (${sig ?? code}) before its DevTools port opened:\n${err}`));
      });
      proc.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    const port = new URL(wsBrowser).port;
    let target: { type: string; webSocketDebuggerUrl: string } | undefined;
    for (let k = 0; k < 50 && !target; k++) {
      const list = (await getJson(`http://127.0.0.1:${port}/json/list`)) as { type: string; webSocketDebuggerUrl: string }[];
      target = list.find((x) => x.type === 'page');
      if (!target) await new Promise((r) => setTimeout(r, 100));
    }
    if (!target) throw new Error('chromium has no page target');
    const ws = await WebSocketClient.connect(target.webSocketDebuggerUrl);
    let nextId = 1;
    const pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void; method: string }>();
    const listeners = new Map<string, (() => void)[]>();
    ws.onMessage = (s) => {
      const m = JSON.parse(s) as { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string };
      if (m.id !== undefined) {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.error) p?.reject(new Error(`${p.method}: ${m.error.message}`));
        else p?.resolve(m.result ?? {});
      } else if (m.method) {
        for (const f of listeners.get(m.method)?.splice(0) ?? []) f();
      }
    };
    ws.onClose = () => {
      for (const p of pending.values()) p.reject(new Error(`${p.method}: DevTools connection closed`));
      pending.clear();
    };
    const send = (method: string, params: object = {}): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject, method });
        ws.send(JSON.stringify({ id, method, params }));
      });
    const evaluate = async <T>(expression: string): Promise<T> => {
      const r = (await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })) as {
        result: { value?: T }; exceptionDetails?: { text: string; exception?: { description?: string } };
      };
      if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text} (${expression})`);
      return r.result.value as T;
    };
    await send('Page.enable');
    await send('Runtime.enable');
    const b: Browser = {
      send,
      evaluate,
      async waitFor(expression, what, timeoutMs = 15_000) {
        const end = Date.now() + timeoutMs;
        for (;;) {
          if (await evaluate<boolean>(`!!(${expression})`)) return;
          if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${expression})`);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      async navigate(url) {
        const loaded = new Promise<void>((r) => {
          const l = listeners.get('Page.loadEventFired') ?? [];
          l.push(r);
          listeners.set('Page.loadEventFired', l);
        });
        const r = (await send('Page.navigate', { url })) as { errorText?: string };
        if (r.errorText) throw new Error(`${url}: ${r.errorText}`);
        await loaded;
      },
      async type(selector, text) {
        await evaluate(`(() => { const e = document.querySelector(${JSON.stringify(selector)}); e.value = ''; e.dispatchEvent(new Event('input', { bubbles: true })); e.focus(); })()`);
        if (text !== '') await send('Input.insertText', { text });
      },
      async screenshot(file) {
        // The whole page, not only the window.
        const m = (await send('Page.getLayoutMetrics')) as { cssContentSize: { width: number; height: number } };
        const clip = { x: 0, y: 0, width: Math.ceil(m.cssContentSize.width), height: Math.ceil(m.cssContentSize.height), scale: 1 };
        const r = (await send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true, clip })) as { data: string };
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, Buffer.from(r.data, 'base64'));
      },
      log: () => err,
      async close() {
        ws.close();
        await cleanup();
      },
    };
    return b;
  } catch (e) {
    await cleanup();
    throw e;
  }
}
