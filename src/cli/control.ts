/**
 * The control socket of a running instance (the emulator's stand-in for the vRouter's netlink channel
 * and /dev/flow): a Unix socket, mode 0600, default /run/vrouter-emu/vrouter.sock. A tool connects, sends
 * one JSON line `{"argv": [...]}`, and reads back one JSON status line then the tool's text output.
 * @module
 */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { UserError } from '../errors';
import { oneLine } from '../lib/input';

export const DEFAULT_SOCKET = '/run/vrouter-emu/vrouter.sock';
/** The longest request line the server reads (bytes of UTF-16 text, as buffered). */
export const CONTROL_MAX_REQUEST = 65536;
/** Time a client has to send its request (ms). */
export const CONTROL_REQUEST_MS = 10_000;
/** The longest status line the client reads. */
const CONTROL_MAX_HEADER = 65536;

/**
 * Runs one tool request: writes its text through `out` (awaiting it lets the socket drain), or throws a
 * UserError before writing anything.
 */
export type ToolHandler = (argv: string[], out: (s: string) => Promise<void>) => Promise<void>;

export interface ControlServer {
  close(): Promise<void>;
}

/**
 * Serve tool requests on `socketPath` (its directory is created 0700, the socket is 0600).
 * @param opts.requestMs time a client has to send its request (default CONTROL_REQUEST_MS).
 */
export function controlServe(socketPath: string, handle: ToolHandler, opts: { requestMs?: number } = {}): Promise<ControlServer> {
  const requestMs = opts.requestMs ?? CONTROL_REQUEST_MS;
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  return new Promise((resolve, reject) => {
    const server = net.createServer((c) => {
      let buf = '';
      let done = false;
      c.setEncoding('utf8');
      // A client that connects and sends no complete request (or goes on sending after a refusal)
      // holds a connection: not for ever.
      c.setTimeout(requestMs, () => c.destroy());
      const refuse = (error: string): void => {
        // Stop reading: data after a refused request was appended to `buf` without bound.
        done = true;
        buf = '';
        c.removeAllListeners('data');
        c.resume();
        c.end(JSON.stringify({ status: 2, error }) + '\n');
      };
      c.on('data', (d: string) => {
        if (done) return;
        buf += d;
        const nl = buf.indexOf('\n');
        // Checked on the line, not only on a chunk without a newline: one chunk may hold a long line and its end.
        if ((nl < 0 ? buf.length : nl) > CONTROL_MAX_REQUEST) {
          refuse(`request longer than ${CONTROL_MAX_REQUEST} bytes; send one JSON line {"argv": [...]}`);
          return;
        }
        if (nl < 0) return;
        let argv: string[];
        try {
          const req = JSON.parse(buf.slice(0, nl)) as { argv?: unknown } | null;
          if (req === null || typeof req !== 'object' || !Array.isArray(req.argv) || !req.argv.every((a) => typeof a === 'string')) throw new Error('bad request');
          argv = req.argv as string[];
        } catch {
          refuse('malformed request; send one JSON line {"argv": ["flow", "-l"]}');
          return;
        }
        done = true;
        buf = '';
        c.setTimeout(0); // a tool's output may take its time (the client reads at its pace)
        c.removeAllListeners('data');
        let started = false;
        const out = async (s: string): Promise<void> => {
          if (!started) {
            started = true;
            c.write(JSON.stringify({ status: 0 }) + '\n');
          }
          if (!c.write(s)) await new Promise<void>((r) => c.once('drain', () => r()));
        };
        handle(argv, out).then(
          () => {
            if (!started) c.write(JSON.stringify({ status: 0 }) + '\n');
            c.end();
          },
          (e: unknown) => {
            const msg = e instanceof Error ? e.message : String(e);
            if (!started) c.end(JSON.stringify({ status: 2, error: msg }) + '\n');
            else c.destroy();
          },
        );
      });
      c.on('error', () => undefined);
    });
    server.once('error', reject);
    server.listen(socketPath, () => {
      fs.chmodSync(socketPath, 0o600);
      resolve({
        close: () =>
          new Promise<void>((res) => {
            server.close(() => res());
            fs.rmSync(socketPath, { force: true });
          }),
      });
    });
  });
}

/** Whether an instance answers on `socketPath`. */
export function controlAlive(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/**
 * Run a tool on the instance at `socketPath`, streaming its output to `write` (within `timeoutMs` of
 * silence, when given).
 * @throws UserError when no instance answers, or the instance refused the request.
 */
export function controlCall(socketPath: string, argv: string[], write: (s: string) => void, timeoutMs = 0): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socketPath);
    if (timeoutMs > 0) {
      // A deadline for callers that must not wait for ever (the vCenter driver): the connection is closed.
      c.setTimeout(timeoutMs, () => {
        c.destroy();
        reject(new UserError(`${socketPath}: no answer to "${argv.join(' ')}" within ${timeoutMs / 1000} s`));
      });
    }
    let header: { status: number; error?: string } | undefined;
    let buf = '';
    c.setEncoding('utf8');
    c.once('connect', () => c.write(JSON.stringify({ argv }) + '\n'));
    c.on('data', (d: string) => {
      if (header) {
        write(d);
        return;
      }
      buf += d;
      const nl = buf.indexOf('\n');
      // Whatever answers on the socket may not be an instance: a bad or endless status line is a
      // UserError, not an exception thrown out of this handler.
      const bad = (): void => {
        header = { status: 2, error: `${socketPath}: the answer is not a vrouter-emu status line (is it a vrouter-emu instance's socket?)` };
        c.destroy();
        reject(new UserError(header.error as string));
      };
      if (nl < 0) {
        if (buf.length > CONTROL_MAX_HEADER) bad();
        return;
      }
      let h: unknown;
      try {
        h = JSON.parse(buf.slice(0, nl));
      } catch {
        bad();
        return;
      }
      const o = h as { status?: unknown; error?: unknown } | null;
      if (o === null || typeof o !== 'object' || typeof o.status !== 'number') {
        bad();
        return;
      }
      header = { status: o.status, error: typeof o.error === 'string' ? oneLine(o.error, 500) : undefined };
      if (nl + 1 < buf.length) write(buf.slice(nl + 1));
    });
    c.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
        reject(new UserError(`no vrouter-emu instance at ${socketPath}; start one with: sudo vrouter-emu start (or give --socket PATH)`));
      } else if (e.code === 'EACCES') {
        reject(new UserError(`${socketPath}: permission denied; the control socket is root's (run the tool with sudo)`));
      } else reject(new UserError(`${socketPath}: ${e.message}`));
    });
    c.once('end', () => {
      if (!header) reject(new UserError(`${socketPath}: the instance closed the connection without an answer`));
      else if (header.status !== 0) reject(new UserError(header.error ?? 'the instance refused the request'));
      else resolve();
    });
  });
}
