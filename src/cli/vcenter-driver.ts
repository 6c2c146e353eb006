/**
 * `vrouter-emu vcenter-driver`: the vCenter driver process (serve) and its verbs, which reach the
 * serving process over a small local API — HTTP with JSON on a Unix socket (mode 0600), one request per
 * Nova call: POST /spawn {name, network, ip}, /destroy, /plug_vifs, /unplug_vifs {name}; GET /instances.
 * @module
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { UserError } from '../errors';
import { oneLine } from '../lib/input';
import { DriverState, parseVlanRange } from '../vcenter/driver-state';
import { VcenterDriver } from '../vcenter/driver';
import { Parsed, opt, parseArgs } from './args';
import { DEFAULT_SOCKET, controlAlive } from './control';
import { vcenterConnect } from './vcenter-mode';

export const DRIVER_SOCKET = '/run/vrouter-emu/vcenter-driver.sock';
export const DRIVER_STATE = '/var/lib/vrouter-emu/vcenter-driver.json';
export const VCENTER_DRIVER_USAGE =
  'vrouter-emu vcenter-driver serve --vcenter URL [--dvs NAME] [--vlan-pool FIRST-LAST] [--state FILE] [--listen SOCK] [--socket VROUTER_SOCK] | ' +
  'vcenter-driver spawn NAME --network N --ip A [--kind netns|qemu] | destroy NAME | plug-vifs NAME | unplug-vifs NAME | list [--json]  [--listen SOCK]';
const OPTS = {
  '--vcenter': { value: true }, '--dvs': { value: true }, '--vlan-pool': { value: true }, '--state': { value: true },
  '--listen': { value: true }, '--socket': { value: true }, '--network': { value: true }, '--ip': { value: true }, '--kind': { value: true }, '--json': {},
};
const MAX_BODY = 65536;
const REQUEST_MS = 120_000;

/** `vcenter-driver VERB …`. @returns the exit status. */
export async function cmdVcenterDriver(argv: string[]): Promise<number> {
  const p = parseArgs(argv, OPTS, VCENTER_DRIVER_USAGE);
  const [verb, name, ...rest] = p.positional;
  if (rest.length > 0) throw new UserError(`unexpected argument ${rest[0]}; usage: ${VCENTER_DRIVER_USAGE}`);
  const listen = opt(p, '--listen') ?? DRIVER_SOCKET;
  if (verb === 'serve') return serve(p, listen);
  const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');
  if (verb === 'list') {
    const r = (await call(listen, 'GET', '/instances')) as { instances: Record<string, unknown>[] };
    if (p.flags.has('--json')) out(JSON.stringify(r.instances));
    else if (r.instances.length === 0) out('no instances');
    else for (const i of r.instances as { name: string; kind?: string; network: string; ip: string; plugged: boolean; port: { uuid: string; vlan: number; portgroup: string; mac: string } }[]) {
      out(`${i.name}\t${i.kind ?? 'netns'}\t${i.network}\t${i.ip}\t${i.port.mac}\tVLAN ${i.port.vlan}\tport ${i.port.uuid}\tport group ${i.port.portgroup}\t${i.plugged ? 'plugged' : 'unplugged'}`);
    }
    return 0;
  }
  const verbs: Record<string, string> = { spawn: '/spawn', destroy: '/destroy', 'plug-vifs': '/plug_vifs', 'unplug-vifs': '/unplug_vifs' };
  if (!verb || !verbs[verb] || !name) throw new UserError(`usage: ${VCENTER_DRIVER_USAGE}`);
  const body: Record<string, string> = { name };
  if (verb === 'spawn') {
    const network = opt(p, '--network');
    const ip = opt(p, '--ip');
    if (!network || !ip) throw new UserError(`vcenter-driver spawn ${name}: --network N and --ip A are required`);
    Object.assign(body, { network, ip, kind: opt(p, '--kind') ?? 'netns' });
  }
  const r = (await call(listen, 'POST', verbs[verb], body)) as { message: string };
  out(r.message);
  return 0;
}

/** One request to the serving driver. @throws UserError with its error, or when none serves. */
function call(socketPath: string, method: string, route: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const req = http.request({ socketPath, method, path: route, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }, timeout: REQUEST_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        if (text.length > MAX_BODY * 16) req.destroy(new Error('answer too long'));
      });
      res.on('end', () => {
        let o: { error?: string } | undefined;
        try {
          o = JSON.parse(text) as { error?: string };
        } catch {
          reject(new UserError(`${socketPath}: the answer is not the vcenter driver's (is it its socket?)`));
          return;
        }
        if (res.statusCode !== 200) reject(new UserError(oneLine(o.error ?? `error ${res.statusCode}`, 500)));
        else resolve(o);
      });
    });
    req.on('timeout', () => req.destroy(new UserError(`${socketPath}: no answer within ${REQUEST_MS / 1000} s`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof UserError) reject(e);
      else if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') reject(new UserError(`no vcenter driver at ${socketPath}; start one with: sudo vrouter-emu vcenter-driver serve --vcenter URL`));
      else reject(new UserError(`${socketPath}: ${e.message}`));
    });
    req.end(data);
  });
}

/** `vcenter-driver serve`: log in to vCenter, re-plug the instances of the state file, answer until a signal. */
async function serve(p: Parsed, listen: string): Promise<number> {
  if (process.getuid?.() !== 0) throw new UserError('vcenter-driver serve needs root (it reaches the vRouter\'s control socket); run it with sudo');
  const url = opt(p, '--vcenter') ?? process.env.VRE_VCENTER_URL;
  if (!url) throw new UserError('vcenter-driver serve needs --vcenter https://user:pass@HOST/sdk (vCenter, or VMware\'s simulator)');
  const socket = opt(p, '--socket') ?? DEFAULT_SOCKET;
  const poolS = opt(p, '--vlan-pool');
  const pool = poolS === undefined ? undefined : parseVlanRange(poolS, '--vlan-pool');
  if (await controlAlive(listen)) throw new UserError(`a vcenter driver is already serving at ${listen}; stop it, or give another --listen SOCK`);
  if (!(await controlAlive(socket))) throw new UserError(`no vrouter-emu instance at ${socket}; start one with: sudo vrouter-emu start --mode vcenter --vcenter URL (or give --socket PATH)`);
  const state = DriverState.open(opt(p, '--state') ?? DRIVER_STATE, pool);
  const log = (s: string): void => void process.stdout.write(s + '\n');
  const vc = await vcenterConnect(url, opt(p, '--dvs') ?? 'DVS0');
  const driver = new VcenterDriver({ ...vc, socket, state, log });
  const server = http.createServer((req, res) => void handle(driver, req, res));
  server.requestTimeout = REQUEST_MS;
  try {
    for (const l of await driver.replugAll()) log(`vcenter-driver: re-plugged ${l}`);
    fs.mkdirSync(path.dirname(listen), { recursive: true, mode: 0o700 });
    fs.rmSync(listen, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new UserError(`vcenter-driver: cannot listen on ${listen}: ${e.message}`)));
      server.listen(listen, () => resolve());
    });
  } catch (e) {
    await vc.vs.logout();
    throw e;
  }
  fs.chmodSync(listen, 0o600);
  log(`vcenter-driver: serving on ${listen}: vCenter ${vc.vs.where}, switch ${vc.dvsName}, VLAN pool ${state.pool.min}-${state.pool.max}, ${state.instances().length} instances (${state.file}), vRouter ${socket}`);
  return new Promise<number>((resolve) => {
    const stop = (sig: string): void => {
      log(`vcenter-driver: stopped by ${sig}; the instances and their VLANs stay in ${state.file}`);
      server.close();
      fs.rmSync(listen, { force: true });
      void vc.vs.logout().then(() => resolve(0));
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

async function handle(driver: VcenterDriver, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const send = (code: number, o: unknown): void => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(o));
  };
  try {
    if (req.method === 'GET' && req.url === '/instances') {
      send(200, { instances: driver.list() });
      return;
    }
    if (req.method !== 'POST') {
      send(404, { error: `${req.method} ${req.url}: the driver answers GET /instances and POST /spawn, /destroy, /plug_vifs, /unplug_vifs` });
      return;
    }
    let text = '';
    for await (const chunk of req) {
      text += chunk;
      if (text.length > MAX_BODY) throw new UserError(`request longer than ${MAX_BODY} bytes`);
    }
    let b: { name?: unknown; network?: unknown; ip?: unknown; kind?: unknown };
    try {
      b = JSON.parse(text) as typeof b;
    } catch {
      throw new UserError('the request is not JSON: send {"name": …}');
    }
    if (typeof b !== 'object' || b === null || typeof b.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/.test(b.name)) {
      throw new UserError('"name": expected an instance name (letters, digits, _ . -, at most 32)');
    }
    const name = b.name;
    switch (req.url) {
      case '/spawn': {
        if (typeof b.network !== 'string' || typeof b.ip !== 'string') throw new UserError(`spawn ${name}: "network" and "ip" are required`);
        const kind = b.kind ?? 'netns';
        if (kind !== 'netns' && kind !== 'qemu') throw new UserError(`spawn ${name}: "kind" ${String(kind)}: expected netns or qemu`);
        const i = await driver.spawn(name, b.network, b.ip, kind);
        send(200, { message: `spawned ${name}: ${i.ip} ${i.port.mac} in ${i.network}, port ${i.port.uuid} on port group ${i.port.portgroup} (VLAN ${i.port.vlan})`, instance: i });
        return;
      }
      case '/destroy': {
        const i = await driver.destroy(name);
        send(200, { message: `destroyed ${name}: port group ${i.port.portgroup} removed, VLAN ${i.port.vlan} free`, instance: i });
        return;
      }
      case '/plug_vifs': {
        const done = await driver.plugVifs(name);
        send(200, { message: done.length ? `plug_vifs ${name}: ${done.join('; ')}` : `plug_vifs ${name}: already plugged` });
        return;
      }
      case '/unplug_vifs':
        await driver.unplugVifs(name);
        send(200, { message: `unplug_vifs ${name}: agent port removed (VM, port group and VLAN kept)` });
        return;
      default:
        send(404, { error: `POST ${req.url}: no such call (spawn, destroy, plug_vifs, unplug_vifs)` });
    }
  } catch (e) {
    send(e instanceof UserError ? 400 : 500, { error: (e as Error).message });
  }
}
