/**
 * `vrouter-emu collector` (serve) and `vrouter-emu collector query` (read what was stored).
 * @module
 */
import * as os from 'os';
import * as path from 'path';
import { CollectorServer } from '../collector/server';
import { FlowStore } from '../collector/store';
import { parseSince, query, queryText } from '../collector/query';
import { COLLECTOR_PORT } from '../collector/wire';
import { UserError } from '../errors';
import { Parsed, opt, optInt } from './args';

export const COLLECTOR_USAGE =
  'vrouter-emu collector [--listen HOST:PORT] [--data DIR]    |    vrouter-emu collector query [--data DIR] [--vn NAME] [--ip ADDR] [--since T] [--limit N] [--json]';

export const COLLECTOR_OPTS = {
  '--listen': { value: true },
  '--data': { value: true },
  '--vn': { value: true },
  '--ip': { value: true },
  '--since': { value: true },
  '--limit': { value: true },
  '--json': {},
};

/** The default data directory: /var/lib/vrouter-emu/collector for root, else under ~/.local/share. */
export function defaultDataDir(): string {
  return process.getuid?.() === 0 ? '/var/lib/vrouter-emu/collector' : path.join(os.homedir(), '.local', 'share', 'vrouter-emu', 'collector');
}

function listenAddr(s: string | undefined): { host: string; port: number } {
  if (s === undefined) return { host: '127.0.0.1', port: COLLECTOR_PORT };
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) throw new UserError(`--listen ${s}: expected HOST:PORT (e.g. 127.0.0.1:8086) or PORT`);
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

export async function cmdCollector(p: Parsed): Promise<number> {
  const dir = opt(p, '--data') ?? defaultDataDir();
  if (p.positional[0] === 'query') {
    if (p.positional.length > 1 || opt(p, '--listen') !== undefined) throw new UserError(`usage: ${COLLECTOR_USAGE}`);
    const json = p.flags.has('--json');
    const limit = optInt(p, '--limit', 50);
    // Text: only the records it shows are kept (the sums are per flow); --json keeps them all.
    const q = query(dir, {
      vn: opt(p, '--vn'), ip: opt(p, '--ip'), since: opt(p, '--since') === undefined ? undefined : parseSince(opt(p, '--since') as string),
      keep: json ? undefined : limit,
    });
    if (json) process.stdout.write(JSON.stringify(q) + '\n');
    else process.stdout.write(queryText(q, limit));
    return 0;
  }
  if (p.positional.length > 0 || ['--vn', '--ip', '--since', '--limit'].some((o) => opt(p, o) !== undefined) || p.flags.has('--json')) {
    throw new UserError(`usage: ${COLLECTOR_USAGE}`);
  }
  const { host, port } = listenAddr(opt(p, '--listen'));
  const store = new FlowStore(dir);
  const log = (l: string): void => void process.stdout.write(l + '\n');
  let fatal: ((e: Error) => void) | undefined;
  const server = new CollectorServer(store, { log, onFatal: (e) => fatal?.(e) });
  let addr: string;
  try {
    addr = await server.listen(host, port);
  } catch (e) {
    store.close();
    throw e;
  }
  log(`vrouter-emu collector: listening on ${addr}, flow records in ${store.file} (${store.records} stored)`);
  if (store.skippedAtOpen + store.tornAtOpen > 0) {
    log(`  the log had ${store.tornAtOpen} lines of a batch torn by a crash (cut off) and ${store.skippedAtOpen} damaged or incomplete lines (skipped)`);
  }
  log(`  query them with: vrouter-emu collector query --data ${dir}`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string, code: number): void => {
      if (stopping) return;
      stopping = true;
      void server.close().then(() => {
        store.close();
        const s = server.stats;
        log(
          `vrouter-emu collector: stopped by ${why}; ${s.records} records stored this run, ${s.duplicates} duplicates dropped, ${s.malformed} malformed and ${s.oversized} oversized messages refused, ` +
          `connections closed: ${s.refused} over the limit, ${s.noHello} without a hello, ${s.idle} stalled; ${s.writeErrors} failed writes`,
        );
        resolve(code);
      });
    };
    // The log cannot be trusted with more (a failed append could not be cut off): stop acknowledging.
    fatal = (e): void => {
      process.stderr.write(`vrouter-emu collector: ${e.message}; stopping (records not acknowledged are sent again by the agents)\n`);
      stop('a write error', 1);
    };
    process.once('SIGINT', () => stop('SIGINT', 0));
    process.once('SIGTERM', () => stop('SIGTERM', 0));
  });
}
