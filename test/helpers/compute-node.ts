/**
 * A compute node on a routed in-thread datapath for agent tests: a topology with two policy-connected
 * networks (blue, red), a public network with an outside host, a VM with a floating IP, an optional fat
 * flow; the agent on a direct (or deferred) channel; readers of the flow table.
 */
import { ComputeNode } from '../../src/agent/compute-node';
import { DirectChannel, directProgrammer } from '../../src/agent/dp-channel';
import { FlowMgr } from '../../src/agent/flow-mgr';
import { topologyFrom } from '../../src/agent/topology';
import { createDatapath } from '../../src/dp/datapath';
import { VR_FLOW_DR_NAMES, VR_VIF_MAC } from '../../src/dp/defs';
import { FlowReq, FlowResp, flowSet, routerDrainWork } from '../../src/dp/flow';
import type { Router } from '../../src/dp/router';
import { feAction, feDropReason, feFlags, feKeyWord, feProto } from '../../src/dp/flow-table';
import { keyDport, keyIpString, keySport } from '../../src/dp/proto-ip';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';
import { inetChecksum } from '../../src/io/frame-build';
import { testHost } from './test-host';

export const policy = {
  'network-policy': {
    fq_name: ['default-domain', 'admin', 'web'],
    network_policy_entries: {
      policy_rule: [
        {
          rule_uuid: 'aaaaaaaa-0000-0000-0000-000000000080', direction: '>', protocol: 'tcp',
          src_addresses: [{ virtual_network: 'default-domain:admin:blue' }], dst_addresses: [{ virtual_network: 'default-domain:admin:red' }],
          src_ports: [{ start_port: -1, end_port: -1 }], dst_ports: [{ start_port: 80, end_port: 80 }],
          action_list: { simple_action: 'pass', log: true },
        },
        {
          rule_uuid: 'dddddddd-0000-0000-0000-000000000001', direction: '<>', protocol: 'icmp',
          src_addresses: [{ virtual_network: 'default-domain:admin:blue' }], dst_addresses: [{ virtual_network: 'default-domain:admin:red' }],
          action_list: { simple_action: 'deny' },
        },
      ],
    },
  },
};

export function topo(opts: { policies?: boolean; fat?: boolean } = {}) {
  return {
    networks: [
      { name: 'blue', subnet: '10.2.0.0/24', gateway: '10.2.0.1', ...(opts.policies === false ? {} : { network_policy_refs: [{ to: ['default-domain', 'admin', 'web'] }] }) },
      { name: 'red', subnet: '10.3.0.0/24', gateway: '10.3.0.1', ...(opts.policies === false ? {} : { network_policy_refs: [{ to: ['default-domain', 'admin', 'web'] }] }) },
      { name: 'public', subnet: '203.0.113.0/24', gateway: '203.0.113.1', router_external: true, outside: { namespace: 'outside', ip: '203.0.113.254' } },
    ],
    vms: [
      { name: 'b1', ip: '10.2.0.10', network: 'blue', floating_ips: ['203.0.113.10'] },
      {
        name: 'b2', ip: '10.2.0.11', network: 'blue',
        ...(opts.fat ? { virtual_machine_interface: { virtual_machine_interface_fat_flow_protocols: { fat_flow_protocol: [{ protocol: 'udp', port: 53 }] } } } : {}),
      },
      { name: 'r1', ip: '10.3.0.10', network: 'red' },
    ],
    network_policies: opts.policies === false ? [] : [policy],
  };
}

/**
 * A channel whose replies come later (at settle), as over the datapath thread's ring: traps of both
 * directions can reach the agent before it hears back.
 */
export class LaterChannel {
  private readonly q: [FlowReq, (resp: FlowResp) => void][] = [];
  constructor(private readonly r: Router) {}
  flowSet(req: FlowReq, done: (resp: FlowResp) => void): void {
    this.q.push([{ ...req }, done]);
  }
  settle(): void {
    for (let e = this.q.shift(); e; e = this.q.shift()) {
      const resp = flowSet(this.r, e[0], { err: 0, index: 0, bytes: 0, packets: 0 });
      e[1]({ ...resp });
    }
    routerDrainWork(this.r);
  }
}

export function node(opts: Parameters<typeof topo>[0] = {}, maxVmFlows = Infinity, later = false) {
  const t = topologyFrom(topo(opts), 't.json');
  const host = testHost();
  const r = createDatapath(host, { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 1024, vr_oflow_entries: 64 });
  const cn = new ComputeNode(t);
  const fds = new Map<string, { fd: number; io: number }>();
  for (const h of [...t.vms, ...t.outside]) fds.set(h.name, { fd: 0, io: 0 });
  cn.program(directProgrammer(r), fds);
  const ch = later ? new LaterChannel(r) : new DirectChannel(r);
  const agent = new FlowMgr(r.ft, ch, cn.flowEnv(), { ageMs: 180_000, tcpScanMs: 15_000, maxVmFlows }, () => host.now);
  const run = (): void => {
    for (const f of host.traps.splice(0)) agent.onTrap(f.frame);
    agent.tick(host.now);
    ch.settle();
  };
  const vifOf = (name: string): number => (cn.hostVif(name) as { idx: number }).idx;
  const macOf = (name: string): string => (t.vms.find((v) => v.name === name) ?? t.outside.find((h) => h.name === name))?.macStr as string;
  return { t, r, host, agent, run, vifOf, macOf, cn };
}

/** Flows of the table, keyed for reading. */
export function flows(r: ReturnType<typeof node>['r']) {
  const out: { i: number; key: string; action: number; reason: string; flags: number }[] = [];
  for (let i = 0; i < r.ft.total; i++) {
    if ((feFlags(r.ft, i) & 1) === 0 || (feFlags(r.ft, i) & 0x800) !== 0) continue;
    const k0 = feKeyWord(r.ft, i, 0);
    out.push({
      i, key: `${keyIpString(feKeyWord(r.ft, i, 1))}:${keySport(k0)}>${keyIpString(feKeyWord(r.ft, i, 2))}:${keyDport(k0)}/${feProto(r.ft, i)}`,
      action: feAction(r.ft, i), reason: VR_FLOW_DR_NAMES[feDropReason(r.ft, i)], flags: feFlags(r.ft, i),
    });
  }
  return out;
}

export const from = (vm: string, n: ReturnType<typeof node>, src: string, dst: string) => ({ src, dst, srcMac: n.macOf(vm), dstMac: VR_VIF_MAC });

/** Whether a frame's IPv4 and TCP/UDP checksums hold. */
export function checksumsOk(f: Uint8Array): boolean {
  if (inetChecksum(f, 14, 20) !== 0) return false;
  const proto = f[23];
  if (proto !== 6 && proto !== 17) return true;
  const len = ((f[16] << 8) | f[17]) - 20;
  const pseudo = ((f[26] << 8) | f[27]) + ((f[28] << 8) | f[29]) + ((f[30] << 8) | f[31]) + ((f[32] << 8) | f[33]) + proto + len;
  return inetChecksum(f, 34, len, pseudo) === 0;
}

