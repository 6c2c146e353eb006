/**
 * A client of gobgpd's gRPC API (the `apipb.GobgpApi` service of gobgp 3.x), as much of it as a compute
 * node's agent needs to run its BGP speaker: StartBgp, AddPeer, ListPeer, AddPath / DeletePath, ListPath
 * and the WatchEvent stream of best paths and peer states.
 *
 * The message definitions are gobgp's own .proto files, read at run time from the Debian package
 * golang-github-osrg-gobgp-dev (the same source package as the gobgpd binary, so the API and the daemon
 * always agree); nothing of them is copied here. protobufjs encodes and decodes the messages, grpc-js
 * carries them; the `google.protobuf.Any` fields (NLRI, path attributes, route distinguishers, extended
 * communities) are packed and unpacked here by type name.
 * @module
 */
import * as fs from 'fs';
import * as path from 'path';
import type * as Grpc from '@grpc/grpc-js';
import type * as protobuf from 'protobufjs';
import { UserError } from '../../errors';

// grpc-js and protobufjs are loaded on first use (route_source "bgp" only): evaluated at start-up they
// would add ~10 MB to every command.
let grpcMod: typeof Grpc | undefined;
const grpcLib = (): typeof Grpc => (grpcMod ??= require('@grpc/grpc-js') as typeof Grpc);

/** Where Debian's golang-github-osrg-gobgp-dev puts the API definitions (gobgp 3.10 in Debian 12). */
export const GOBGP_PROTO_DIRS = ['/usr/share/gocode/src/github.com/osrg/gobgp/api', '/usr/share/gocode/src/github.com/osrg/gobgp/v3/api'];
export const GOBGP_PROTO_PACKAGE = 'golang-github-osrg-gobgp-dev';

/** A decoded message: protobufjs's plain-object form (enums as numbers, bytes as Buffers, int64 as strings). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Msg = Record<string, any>;

/** A packed `Any`: its type name (without the type.googleapis.com/ prefix) and the fields. */
export interface AnyOf {
  type: string;
  value: Msg;
}

export const FAMILY_EVPN = { afi: 25, safi: 70 };
export const FAMILY_VPNV4 = { afi: 1, safi: 128 };
export const TABLE_GLOBAL = 0;
export const SESSION_ESTABLISHED = 6;
/** WatchEventRequest.Table.Filter.Type: what peers sent, before import policy (the Adj-RIB-In). */
export const WATCH_ADJIN = 1;
/** Policy enums: RouteAction, PolicyDirection, Conditions.RouteType. */
export const ROUTE_ACCEPT = 1;
export const ROUTE_REJECT = 2;
export const POLICY_IMPORT = 1;
export const ROUTE_TYPE_INTERNAL = 1;
export const SESSION_STATES = ['UNKNOWN', 'IDLE', 'CONNECT', 'ACTIVE', 'OPENSENT', 'OPENCONFIRM', 'ESTABLISHED'];

let apiRoot: protobuf.Root | undefined;

/** The gobgp API definitions. @throws UserError naming the package to install when they are missing. */
export function gobgpApi(dirs = GOBGP_PROTO_DIRS): protobuf.Root {
  if (apiRoot) return apiRoot;
  const dir = dirs.find((d) => fs.existsSync(path.join(d, 'gobgp.proto')));
  if (!dir) {
    throw new UserError(`gobgp's API definitions (gobgp.proto) are not in ${dirs[0]}: install them with: apt-get install -y ${GOBGP_PROTO_PACKAGE}`);
  }
  const root = new (require('protobufjs') as typeof protobuf).Root();
  // gobgp.proto and attribute.proto import each other by bare name; google/protobuf/* are protobufjs's own.
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : path.join(dir, path.basename(target)));
  root.loadSync(['gobgp.proto', 'attribute.proto', 'capability.proto'].map((f) => path.join(dir, f)), { keepCase: true });
  root.resolveAll();
  apiRoot = root;
  return root;
}

const TYPE_PREFIX = 'type.googleapis.com/apipb.';

function type(name: string): protobuf.Type {
  return gobgpApi().lookupType(`apipb.${name}`);
}

/** Pack `value` as an Any of apipb.`name`. */
export function pack(name: string, value: Msg): Msg {
  const t = type(name);
  return { type_url: TYPE_PREFIX + name, value: t.encode(t.fromObject(value)).finish() };
}

/** Unpack an Any (its type name and fields), or undefined for a type this API does not define. */
export function unpack(a: Msg | null | undefined): AnyOf | undefined {
  if (!a || typeof a.type_url !== 'string') return undefined;
  const name = a.type_url.startsWith(TYPE_PREFIX) ? a.type_url.slice(TYPE_PREFIX.length) : a.type_url.replace(/^.*\//, '').replace(/^apipb\./, '');
  let t: protobuf.Type;
  try {
    t = type(name);
  } catch {
    return undefined;
  }
  const value = t.toObject(t.decode(a.value as Uint8Array), { longs: String, enums: Number, bytes: Buffer, defaults: true, arrays: true });
  return { type: name, value };
}

function toObj(t: protobuf.Type, b: Buffer): Msg {
  return t.toObject(t.decode(b), { longs: String, enums: Number, bytes: Buffer, defaults: true, arrays: true, oneofs: true });
}

interface Method {
  path: string;
  req: string;
  resp: string;
  stream: 'unary' | 'server' | 'client';
}

/** The methods used, by name: request and response types and how they stream. */
const METHODS: Record<string, Method> = {};
for (const [name, req, resp, stream] of [
  ['StartBgp', 'StartBgpRequest', 'google.protobuf.Empty', 'unary'],
  ['StopBgp', 'StopBgpRequest', 'google.protobuf.Empty', 'unary'],
  ['GetBgp', 'GetBgpRequest', 'GetBgpResponse', 'unary'],
  ['AddPeer', 'AddPeerRequest', 'google.protobuf.Empty', 'unary'],
  ['AddPolicy', 'AddPolicyRequest', 'google.protobuf.Empty', 'unary'],
  ['AddPolicyAssignment', 'AddPolicyAssignmentRequest', 'google.protobuf.Empty', 'unary'],
  ['ListPeer', 'ListPeerRequest', 'ListPeerResponse', 'server'],
  ['AddPath', 'AddPathRequest', 'AddPathResponse', 'unary'],
  ['DeletePath', 'DeletePathRequest', 'google.protobuf.Empty', 'unary'],
  ['ListPath', 'ListPathRequest', 'ListPathResponse', 'server'],
  ['AddPathStream', 'AddPathStreamRequest', 'google.protobuf.Empty', 'client'],
  ['WatchEvent', 'WatchEventRequest', 'WatchEventResponse', 'server'],
] as const) {
  METHODS[name] = { path: `/apipb.GobgpApi/${name}`, req, resp, stream };
}

function lookup(name: string): protobuf.Type {
  return name.startsWith('google.') ? gobgpApi().lookupType(name) : type(name);
}

/** One connection to a gobgpd's API (`--api-hosts ADDR:PORT`). */
export class GobgpClient {
  private readonly client: Grpc.Client;

  constructor(readonly target: string) {
    // No limit on what gobgpd sends: a WatchEvent message carries a whole burst of paths (megabytes for
    // 10 000 routes), and grpc-js's default 4 MiB would end the stream.
    const grpc = grpcLib();
    this.client = new grpc.Client(target, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
  }

  /** Wait until the API answers (gobgpd starting), up to `ms`. */
  ready(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + ms, (e) => (e ? reject(e) : resolve()));
    });
  }

  private codec(m: Method): { ser: (o: Msg) => Buffer; de: (b: Buffer) => Msg } {
    const rq = lookup(m.req);
    const rs = lookup(m.resp);
    return { ser: (o) => Buffer.from(rq.encode(rq.fromObject(o)).finish()), de: (b) => toObj(rs, b) };
  }

  /** A unary call. */
  call(name: string, req: Msg, ms = 10_000): Promise<Msg> {
    const m = METHODS[name];
    const { ser, de } = this.codec(m);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(m.path, ser, de, req, new (grpcLib().Metadata)(), { deadline: Date.now() + ms }, (e, r) => (e ? reject(e) : resolve(r as Msg)));
    });
  }

  /** A server-streaming call, collected. */
  list(name: string, req: Msg, ms = 30_000): Promise<Msg[]> {
    const m = METHODS[name];
    const { ser, de } = this.codec(m);
    return new Promise((resolve, reject) => {
      const out: Msg[] = [];
      const s = this.client.makeServerStreamRequest(m.path, ser, de, req, new (grpcLib().Metadata)(), { deadline: Date.now() + ms });
      s.on('data', (r: Msg) => out.push(r));
      s.on('error', reject);
      s.on('end', () => resolve(out));
    });
  }

  /** A server stream kept open (WatchEvent): `onData` per message, `onEnd` once when it ends or fails. */
  watch(name: string, req: Msg, onData: (r: Msg) => void, onEnd: (e?: Error) => void): { cancel(): void } {
    const m = METHODS[name];
    const { ser, de } = this.codec(m);
    const s = this.client.makeServerStreamRequest(m.path, ser, de, req, new (grpcLib().Metadata)(), {});
    let ended = false;
    const end = (e?: Error): void => {
      if (ended) return;
      ended = true;
      onEnd(e);
    };
    s.on('data', onData);
    s.on('error', (e: Grpc.ServiceError) => end(e.code === grpcLib().status.CANCELLED ? undefined : e));
    s.on('end', () => end());
    return { cancel: () => s.cancel() };
  }

  /** A client stream (AddPathStream): every request written, then the reply awaited. */
  stream(name: string, reqs: Iterable<Msg>, ms = 120_000): Promise<Msg> {
    const m = METHODS[name];
    const { ser, de } = this.codec(m);
    return new Promise((resolve, reject) => {
      const s = this.client.makeClientStreamRequest(m.path, ser, de, new (grpcLib().Metadata)(), { deadline: Date.now() + ms }, (e, r) => (e ? reject(e) : resolve(r as Msg)));
      for (const r of reqs) s.write(r);
      s.end();
    });
  }

  close(): void {
    this.client.close();
  }
}
