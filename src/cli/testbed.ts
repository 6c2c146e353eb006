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
import { UserError } from '../errors';
import { Topology, readTopology, topologyFrom } from '../agent/topology';
import { packageRoot } from '../lib/package-root';
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

/**
 * A cluster topology from raw JSON (agent/topology.ts), with the testbed's one default of its own: a
 * bare-metal host without `mtu` gets 1450 (VXLAN over IPv4 adds 50 bytes to the 1500-byte fabric), not
 * the 1500 of a VM's TAP.
 */
export function clusterTopologyFrom(raw: unknown, file: string, baseDir = '.'): Topology {
  const t = topologyFrom(raw, file, baseDir);
  const rawBm = (raw as { bare_metal?: unknown }).bare_metal;
  t.bareMetal.forEach((b, k) => {
    const o = Array.isArray(rawBm) ? (rawBm[k] as Record<string, unknown> | undefined) : undefined;
    if (o?.mtu === undefined) b.mtu = BARE_METAL_DEFAULT_MTU;
  });
  return t;
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
  if (plan.bgp) {
    out(`Routes over BGP: route reflector ${plan.bgp.reflector} (gobgpd, AS ${plan.bgp.as}) in namespace ${plan.fabricNs}, log ${plan.bgp.log}; each node runs its own gobgpd speaker`);
  }
  if (plan.vteps.length > 0) {
    out(plan.bgp ? 'Bare-metal hosts (kernel VXLAN VTEPs, FRR EVPN gateways):' : 'Bare-metal hosts (kernel VXLAN VTEPs):');
    for (const v of plan.vteps) {
      out(`  ${v.name} ${v.ip} (${v.network}, ${v.mac}, MTU ${v.mtu}) in namespace ${v.hostNs}; VTEP ${v.vtepIp} ${v.vxlanDev} (VNI ${v.vni}) in namespace ${v.vtepNs}` +
        (v.frr ? `; FRR ${v.frr.pathspace} (IRB ${v.frr.irb}, route target ${v.frr.rt})` : ''));
    }
  }
  const vms = plan.nodes.flatMap((n) => n.vms);
  out('Look at it with:');
  out(`  sudo vrouter-emu flow -l --node ${plan.nodes[0].name}${tb}      (also vif --list, dropstats, agent flows)`);
  if (vms.length >= 2) out(`  sudo ip netns exec ${vms[0].namespace} ping -c 3 ${vms[1].ip}`);
  if (plan.vteps.length > 0 && vms.length > 0) out(`  sudo ip netns exec ${plan.vteps[0].hostNs} ping -c 3 ${vms[0].ip}`);
  out(`  sudo ip netns exec ${plan.fabricNs} tshark -i ${FABRIC_BRIDGE} -d udp.port==6635,mpls`);
  if (plan.bgp) {
    out(`  sudo vrouter-emu bgp --node ${plan.nodes[0].name}${tb}      (the node's BGP peers and routes)`);
    out(`  sudo ip netns exec ${plan.fabricNs} gobgp global rib -a evpn`);
    const f = plan.vteps.find((v) => v.frr)?.frr;
    if (f) out(`  sudo vtysh -N ${f.pathspace} -c 'show bgp l2vpn evpn'`);
  }
}

export const TESTBED_STOP_LINE = 'Stop with Ctrl-C: the node processes are stopped and the namespaces removed.';

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
  const topo = demoRaw ? clusterTopologyFrom(demoRaw, '(demo cluster)') : readTopology(topoFile as string, clusterTopologyFrom);
  const plan = clusterPlan(topo, prefix, topoFile ?? '(demo cluster)');
  for (const note of topo.notes) log(`vrouter-emu: ${note}`);

  for (const line of await cleanClusterLeftovers(prefix)) log(`vrouter-emu: ${line}`);
  const cluster = new Cluster(plan);
  cluster.checkFree();

  let signalled = '';
  let onSignal: (sig: string) => void = (sig) => {
    signalled = sig;
  };
  const handlers: [NodeJS.Signals, () => void][] = (['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]).map((sig) => [sig, () => onSignal(sig)]);
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
    if (plan.bgp) {
      log(`vrouter-emu: testbed ${prefix}: starting the route reflector on ${plan.bgp.reflector} (gobgpd, AS ${plan.bgp.as})${plan.vteps.some((v) => v.frr) ? ` and ${plan.vteps.filter((v) => v.frr).length} FRR gateway(s)` : ''}`);
      await cluster.startControl(checkSignal);
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
    }
    // A signal during the demo stops the testbed as one afterwards would (below).
    log(TESTBED_STOP_LINE);
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
