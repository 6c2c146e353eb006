/**
 * `vrouter-emu testbed`: several compute nodes on this host, joined by an emulated underlay (one Linux
 * bridge in its own namespace), with kernel VXLAN VTEPs for the topology's bare-metal hosts; one
 * `vrouter-emu start --node NAME` per node inside that node's namespace. In the foreground until
 * SIGINT/SIGTERM, then everything is removed. The OS side is src/io/cluster.ts.
 * @module
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { UserError, isUserError } from '../errors';
import { Topology, topologyFrom } from '../agent/topology';
import { ipParse, ipString } from '../lib/ipv4';
import { jsonErrorLine, readInputFile } from '../lib/input';
import { packageRoot } from '../lib/package-root';
import type { BareMetalSpec, Encap, NodeSpec } from '../lib/topology-types';
import { ENCAPS } from '../lib/topology-types';
import {
  BARE_METAL_DEFAULT_MTU, Cluster, ClusterPlan, DEFAULT_PREFIX, FABRIC_BRIDGE, checkNodeCount, checkPrefix, cleanClusterLeftovers,
  clusterPlan, demoClusterTopology, nodeSocket, testbedDir,
} from '../io/cluster';
import { Parsed, opt } from './args';
import { controlAlive } from './control';

export const TESTBED_USAGE = 'sudo vrouter-emu testbed [--topology FILE | --nodes N] [--prefix P] [--no-demo-traffic]';

export const TESTBED_OPTS = {
  '--topology': { value: true },
  '--nodes': { value: true },
  '--prefix': { value: true },
  '--no-demo-traffic': {},
};

function log(s: string): void {
  process.stdout.write(s + '\n');
}

// ---------------------------------------------------------------------------------------------------
// Reading a cluster topology. Until agent/topology.ts parses `nodes`, `bare_metal`, the VMs' `node` and
// the networks' `vxlan_network_identifier` itself, they are read here (same defaults) and the rest of the
// file goes through topologyFrom. Once the parser knows them, topologyFrom's result is used as is.

const MAC_RE = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i;

function macText(mac: Uint8Array): string {
  return Array.from(mac, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The overlay fields of a raw topology, with the defaults of the schema (see src/lib/topology-types.ts). */
export function overlayFromRaw(raw: Record<string, unknown>, file: string, base: Topology): Topology {
  const bad = (field: string, msg: string): never => {
    throw new UserError(`${file}: ${field}: ${msg}`);
  };
  const nodes: NodeSpec[] = [];
  const rawNodes = raw.nodes ?? [];
  if (!Array.isArray(rawNodes)) bad('nodes', 'expected a list of {name, fabric_ip}');
  (rawNodes as unknown[]).forEach((n, i) => {
    const f = `nodes[${i}]`;
    const o = (typeof n === 'object' && n !== null ? n : bad(f, 'expected {name, fabric_ip}')) as Record<string, unknown>;
    if (typeof o.name !== 'string' || o.name === '') bad(`${f}.name`, 'expected a node name');
    if (nodes.some((x) => x.name === o.name)) bad(`${f}.name`, `node ${String(o.name)} is defined twice`);
    const m = typeof o.fabric_ip === 'string' ? /^(.+)\/(\d{1,2})$/.exec(o.fabric_ip) : null;
    const ip = m ? ipParse(m[1]) : -1;
    const len = m ? Number(m[2]) : -1;
    if (ip < 0 || len < 8 || len > 30) bad(`${f}.fabric_ip`, `${JSON.stringify(o.fabric_ip)}: expected an address with its prefix, like 192.168.50.11/24`);
    const fi = o.fabric_interface ?? 'eth1';
    if (typeof fi !== 'string') bad(`${f}.fabric_interface`, 'expected an interface name');
    const enc = o.encapsulations ?? [...ENCAPS];
    if (!Array.isArray(enc) || !enc.every((e) => (ENCAPS as readonly unknown[]).includes(e))) bad(`${f}.encapsulations`, `expected a list of ${ENCAPS.join(', ')}`);
    nodes.push({ name: o.name as string, fabricIp: ip, fabricIpStr: ipString(ip), prefixLen: len, fabricInterface: fi as string, encapsulations: enc as Encap[] });
  });
  const vmsRaw = Array.isArray(raw.vms) ? (raw.vms as unknown[]) : [];
  const vms = base.vms.map((v, i) => {
    const o = vmsRaw[i] as Record<string, unknown> | undefined;
    const node = o?.node;
    if (node !== undefined && typeof node !== 'string') bad(`vms[${i}].node`, 'expected a node name');
    return { ...v, node: (node as string | undefined) ?? '' };
  });
  const nwRaw = Array.isArray(raw.networks) ? (raw.networks as unknown[]) : [];
  const networks = base.networks.map((nw, i) => {
    const v = (nwRaw[i] as Record<string, unknown> | undefined)?.vxlan_network_identifier;
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 0xffffff)) {
      bad(`networks[${i}].vxlan_network_identifier`, `${JSON.stringify(v)}: expected a VNI from 1 to 16777215`);
    }
    return { ...nw, vxlanId: (v as number | undefined) ?? 0 };
  });
  const bareMetal: BareMetalSpec[] = [];
  const rawBm = raw.bare_metal ?? [];
  if (!Array.isArray(rawBm)) bad('bare_metal', 'expected a list of {name, vtep_ip, ip, network}');
  (rawBm as unknown[]).forEach((b, i) => {
    const f = `bare_metal[${i}]`;
    const o = (typeof b === 'object' && b !== null ? b : bad(f, 'expected {name, vtep_ip, ip, network}')) as Record<string, unknown>;
    if (typeof o.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/.test(o.name)) bad(`${f}.name`, 'expected a name of letters, digits, _ . - (at most 32)');
    const vtep = ipParse(o.vtep_ip);
    if (vtep < 0) bad(`${f}.vtep_ip`, `${JSON.stringify(o.vtep_ip)} is not an IPv4 address`);
    const ip = ipParse(o.ip);
    if (ip < 0) bad(`${f}.ip`, `${JSON.stringify(o.ip)} is not an IPv4 address`);
    const nw = networks.find((n) => n.name === o.network);
    if (!nw) return bad(`${f}.network`, `${JSON.stringify(o.network)} is not one of the networks`);
    let mac: Uint8Array;
    if (o.mac === undefined) mac = Uint8Array.from([0x02, 0x00, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255]);
    else {
      const mm = typeof o.mac === 'string' ? MAC_RE.exec(o.mac) : null;
      if (!mm) return bad(`${f}.mac`, `${JSON.stringify(o.mac)} is not a MAC address like 02:00:0a:01:01:0a`);
      mac = Uint8Array.from(mm.slice(1).map((x) => parseInt(x, 16)));
    }
    const mtu = o.mtu ?? BARE_METAL_DEFAULT_MTU;
    if (!Number.isInteger(mtu) || (mtu as number) < 576 || (mtu as number) > 9000) bad(`${f}.mtu`, `${JSON.stringify(o.mtu)}: expected an MTU from 576 to 9000`);
    for (const k of ['namespace', 'vtep_namespace']) {
      if (o[k] !== undefined && (typeof o[k] !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/.test(o[k] as string))) bad(`${f}.${k}`, 'expected a namespace name');
    }
    bareMetal.push({
      name: o.name as string, ip, ipStr: o.ip as string, mac, macStr: macText(mac), network: nw.name, mtu: mtu as number,
      namespace: (o.namespace as string | undefined) ?? `bms-${o.name as string}`, vtepNamespace: (o.vtep_namespace as string | undefined) ?? `vtep-${o.name as string}`,
      vtepIp: vtep, vtepIpStr: o.vtep_ip as string,
    });
  });
  const g = raw.global_vrouter_config;
  let mode = base.global.vxlanMode;
  if (typeof g === 'object' && g !== null) {
    const o = g as Record<string, unknown>;
    const inner = (o['global-vrouter-config'] ?? o) as Record<string, unknown>;
    if (inner.vxlan_network_identifier_mode === 'configured') mode = 'configured';
  }
  return { ...base, nodes, vms, networks, bareMetal, global: { ...base.global, vxlanMode: mode } };
}

/** A cluster topology from raw JSON: the project's parser, with the overlay fields read here while it lacks them. */
export function clusterTopologyFrom(raw: unknown, file: string, baseDir = '.'): Topology {
  try {
    const t = topologyFrom(raw, file, baseDir);
    if (t.nodes.length > 0 || typeof raw !== 'object' || raw === null || !('nodes' in raw)) return t;
  } catch (e) {
    if (!isUserError(e) || !/\.(nodes|bare_metal|node|vxlan_network_identifier): unknown key/.test(e.message)) throw e;
  }
  // The parser does not know the overlay keys yet: the rest without them, then the overlay read here.
  const r = raw as Record<string, unknown>;
  const strip = (list: unknown, key: string): unknown =>
    Array.isArray(list) ? list.map((x) => (typeof x === 'object' && x !== null ? Object.fromEntries(Object.entries(x).filter(([k]) => k !== key)) : x)) : list;
  const rest: Record<string, unknown> = Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'nodes' && k !== 'bare_metal'));
  rest.vms = strip(r.vms, 'node');
  rest.networks = strip(r.networks, 'vxlan_network_identifier');
  return overlayFromRaw(r, file, topologyFrom(rest, file, baseDir));
}

function readClusterTopology(file: string): Topology {
  const text = readInputFile(file, (problem, enoent) => (enoent ? `${file}: no such topology file` : `${file}: ${problem.replace(/^cannot read it/, 'cannot read the topology')}`));
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${jsonErrorLine(e)})`);
  }
  return clusterTopologyFrom(raw, file, path.dirname(file));
}

// ---------------------------------------------------------------------------------------------------

/** The summary: nodes, VMs, bare-metal hosts, and how to look at them. */
export function testbedSummary(plan: ClusterPlan, pids: number[], out: (s: string) => void): void {
  const tb = plan.prefix === DEFAULT_PREFIX ? '' : ` --testbed ${plan.prefix}`;
  out(`\nvrouter-emu testbed ${plan.prefix}: ${plan.nodes.length} compute node${plan.nodes.length === 1 ? '' : 's'} on fabric ${plan.fabricSubnet} (bridge ${FABRIC_BRIDGE} in namespace ${plan.fabricNs})`);
  plan.nodes.forEach((n, i) => {
    out(`  ${n.name}: fabric ${n.fabricIp} on ${n.fabricIf} in namespace ${n.ns}, pid ${pids[i] ?? '?'}`);
    out(`    socket ${n.socket}, log ${n.log}`);
    for (const v of n.vms) out(`    VM ${v.name} ${v.ip} (${v.network}) in namespace ${v.namespace}`);
  });
  if (plan.vteps.length > 0) {
    out('Bare-metal hosts (kernel VXLAN VTEPs):');
    for (const v of plan.vteps) {
      out(`  ${v.name} ${v.ip} (${v.network}, ${v.mac}, MTU ${v.mtu}) in namespace ${v.hostNs}; VTEP ${v.vtepIp} ${v.vxlanDev} (VNI ${v.vni}) in namespace ${v.vtepNs}`);
    }
  }
  const vms = plan.nodes.flatMap((n) => n.vms);
  out('Look at it with:');
  out(`  sudo vrouter-emu flow -l --node ${plan.nodes[0].name}${tb}      (also vif --list, dropstats, agent flows)`);
  if (vms.length >= 2) out(`  sudo ip netns exec ${vms[0].namespace} ping -c 3 ${vms[1].ip}`);
  if (plan.vteps.length > 0 && vms.length > 0) out(`  sudo ip netns exec ${plan.vteps[0].hostNs} ping -c 3 ${vms[0].ip}`);
  out(`  sudo ip netns exec ${plan.fabricNs} tshark -i ${FABRIC_BRIDGE} -d udp.port==6635,mpls`);
  out('Stop with Ctrl-C: the node processes are stopped and the namespaces removed.');
}

function runOut(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let s = '';
    p.stdout.on('data', (d: Buffer) => (s += d.toString()));
    p.stderr.on('data', (d: Buffer) => (s += d.toString()));
    p.once('error', (e) => resolve(e.message));
    p.once('close', () => resolve(s));
  });
}

export async function cmdTestbed(p: Parsed): Promise<number> {
  if (p.positional.length > 0) throw new UserError(`unexpected argument ${p.positional[0]}; usage: ${TESTBED_USAGE}`);
  const prefix = opt(p, '--prefix') ?? DEFAULT_PREFIX;
  checkPrefix(prefix);
  const topoFile = opt(p, '--topology');
  if (topoFile !== undefined && opt(p, '--nodes') !== undefined) {
    throw new UserError('--nodes is for the embedded demo; with --topology the nodes are the topology\'s "nodes": give one or the other');
  }
  const n = checkNodeCount(opt(p, '--nodes') ?? '2');
  if (process.getuid?.() !== 0) throw new UserError('testbed needs root to create network namespaces, veths and bridges; run it with sudo');
  const demoRaw = topoFile === undefined ? demoClusterTopology(n, prefix) : undefined;
  const topo = demoRaw ? clusterTopologyFrom(demoRaw, '(demo cluster)') : readClusterTopology(topoFile as string);
  const plan = clusterPlan(topo, prefix, topoFile ?? '(demo cluster)');
  for (const note of topo.notes) log(`vrouter-emu: ${note}`);

  for (const line of await cleanClusterLeftovers(prefix)) log(`vrouter-emu: ${line}`);
  const cluster = new Cluster(plan);
  cluster.checkFree();

  let signalled = '';
  let onSignal: (sig: string) => void = (sig) => {
    signalled = sig;
  };
  const handlers: [NodeJS.Signals, () => void][] = (['SIGINT', 'SIGTERM'] as NodeJS.Signals[]).map((sig) => [sig, () => onSignal(sig)]);
  for (const [sig, h] of handlers) process.on(sig, h);
  const checkSignal = (): void => {
    if (signalled) throw new UserError(`stopped by ${signalled} while starting; removed what was created`);
  };
  let stopping: Promise<void> | undefined;
  const teardown = (why: string): Promise<void> => {
    if (stopping) return stopping;
    stopping = (async () => {
      const r = await cluster.teardown();
      for (const prob of r.problems) log(`vrouter-emu: ${prob}`);
      if (why) {
        if (r.killed.length > 0) log(`vrouter-emu: node pids ${r.killed.join(', ')} did not stop on SIGTERM within 15 s: killed`);
        log(`vrouter-emu: ${why}; stopped ${cluster.state.nodes.length} node process${cluster.state.nodes.length === 1 ? '' : 'es'}, removed namespaces ${r.removed.join(', ') || '(none)'} and ${plan.dir}`);
      }
    })();
    return stopping;
  };

  try {
    log(`vrouter-emu: testbed ${prefix}: building the underlay (${plan.namespaces.length} namespaces)`);
    cluster.setupUnderlay(checkSignal);
    let file = topoFile === undefined ? '' : path.resolve(topoFile);
    if (demoRaw) {
      file = path.join(plan.dir, 'topology.json');
      fs.writeFileSync(file, JSON.stringify(demoRaw, null, 2) + '\n', { mode: 0o600 });
    }
    log(`vrouter-emu: testbed ${prefix}: starting ${plan.nodes.length} node process${plan.nodes.length === 1 ? '' : 'es'} (logs in ${plan.dir})`);
    await cluster.startNodes(file, path.join(packageRoot(), 'bin', 'vrouter-emu.cjs'), controlAlive, checkSignal);
    cluster.onNodeExit((node, how) => {
      if (!stopping) log(`vrouter-emu: node ${node} exited (${how}); see ${plan.dir}/${node}.log (Ctrl-C removes the testbed)`);
    });
    testbedSummary(plan, cluster.state.nodes.map((x) => x.pid), log);
    const vms = plan.nodes.flatMap((x) => x.vms);
    if (demoRaw && !p.flags.has('--no-demo-traffic') && vms.length >= 2) {
      log(`\nDemo traffic: ${vms[0].name} (on ${plan.nodes[0].name}) pings ${vms[1].name} (on ${plan.nodes[1].name}) across the fabric`);
      const out = await runOut('ip', ['netns', 'exec', vms[0].namespace, 'ping', '-c', '3', '-i', '0.2', '-W', '1', vms[1].ip]);
      for (const l of out.trim().split('\n').slice(-2)) log(`  ${l}`);
      checkSignal();
    }
  } catch (e) {
    await teardown('');
    for (const [sig, h] of handlers) process.off(sig, h);
    throw e;
  }

  return new Promise<number>((resolve) => {
    onSignal = (sig) => {
      void teardown(`stopped by ${sig}`).then(() => resolve(0));
    };
    if (signalled) onSignal(signalled);
  });
}

/**
 * The socket of node `node` of testbed `prefix` (tools' --node NAME [--testbed P]).
 * @throws UserError naming the node and the testbed's nodes when it has no such socket.
 */
export function testbedSocket(node: string, prefix = DEFAULT_PREFIX): string {
  checkPrefix(prefix);
  const dir = testbedDir(prefix);
  const sock = nodeSocket(prefix, node);
  if (/^[A-Za-z0-9_-]{1,8}$/.test(node) && fs.existsSync(sock)) return sock;
  let nodes: string[] = [];
  try {
    nodes = fs.readdirSync(dir).filter((f) => f.endsWith('.sock')).map((f) => f.slice(0, -5)).sort();
  } catch {
    throw new UserError(`no testbed ${prefix} is running (no ${dir}); start one with: sudo vrouter-emu testbed${prefix === DEFAULT_PREFIX ? '' : ` --prefix ${prefix}`}, or give --testbed P`);
  }
  throw new UserError(`testbed ${prefix} has no node ${JSON.stringify(node).slice(1, -1)}; its nodes: ${nodes.join(', ') || '(none answering yet)'} (sockets in ${dir})`);
}
