/**
 * The tests' router and agent on the manual-clock host (src/dp/manual-host.ts, the replay's host too):
 * traps and transmitted frames collected, the clock advanced by hand, a seeded random source.
 */
import { FlowMgr, FlowEnv, allowAllEnv } from '../../src/agent/flow-mgr';
import { DirectChannel } from '../../src/agent/dp-channel';
import { ManualHost } from '../../src/dp/manual-host';
import { createDatapath, dpBurstEnd, dpRx } from '../../src/dp/datapath';
import { VIF_FLAG_L2_ENABLED, VIF_FLAG_L3_ENABLED, VIF_FLAG_POLICY_ENABLED, VIF_TYPE_VIRTUAL, macParse, vifAdd } from '../../src/dp/interface';
import { DpConfig, Router } from '../../src/dp/router';
import { MODULE_PARAM_DEFAULTS, ModuleParams } from '../../src/params/module-params';
import { rd16, rd32 } from '../../src/dp/pkt';
import { AH_CMD, AH_CMD_PARAM, AH_CMD_PARAM_2, AH_CMD_PARAM_3, ETH_HLEN } from '../../src/dp/defs';

/** The tests' host: the manual-clock host at 1 000 000 ms, random source seeded with 12345, transmits kept. */
export function testHost(): ManualHost {
  return new ManualHost({ now: 1_000_000, seed: 12345 });
}

export interface Trap {
  cmd: number;
  index: number;
  bytes: number;
  packets: number;
}

export function parseTrap(f: Uint8Array): Trap {
  return {
    cmd: rd16(f, ETH_HLEN + AH_CMD),
    index: rd32(f, ETH_HLEN + AH_CMD_PARAM),
    bytes: rd32(f, ETH_HLEN + AH_CMD_PARAM_2),
    packets: rd32(f, ETH_HLEN + AH_CMD_PARAM_3),
  };
}

export const VM_VIF = 3;
export const VM_NH = 16;

/** A router with small tables and one policy-enabled VM vif (vif0/3, VRF 1, NH 16). */
export function testRouter(p: Partial<ModuleParams> = {}, cfg: Partial<DpConfig> = {}): { r: Router; host: ManualHost } {
  const host = testHost();
  const params = { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 64, vr_oflow_entries: 16, ...p };
  const r = createDatapath(host, params, { routing: false, ...cfg });
  vifAdd(r.vifs, {
    idx: VM_VIF, type: VIF_TYPE_VIRTUAL, name: 'tap-test', vrf: 1, nh: VM_NH,
    flags: VIF_FLAG_POLICY_ENABLED | VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED, mtu: 1500,
    mac: macParse('00:00:5e:00:01:00') as Uint8Array, up: true, ip: 0,
  });
  return { r, host };
}

/** Receive a frame on the test VM vif and end the burst. */
export function rx(r: Router, frame: Uint8Array, vif = VM_VIF): void {
  dpRx(r, vif, frame, 0, frame.length);
  dpBurstEnd(r);
}


export interface TestEnv {
  /** The reverse key's nexthop (default: the forward's). */
  reverseNh?: (vrf: number, sip: number, dip: number, nh: number) => number;
  /** Override the action of both directions. */
  decide?: () => { action: number; dropReason: number };
  /** Replace the environment altogether. */
  env?: FlowEnv;
}

/** The default agent on a test router: traps are handed over by `run()`. */
export function testAgent(r: Router, host: ManualHost, opts: TestEnv = {}, ageMs = 180_000): { agent: FlowMgr; run: () => void } {
  const ch = new DirectChannel(r);
  const base = opts.env ?? allowAllEnv(opts.reverseNh);
  const env: FlowEnv = opts.decide
    ? {
        plan: (...a) => {
          const p = base.plan(...a);
          const d = (opts.decide as NonNullable<TestEnv['decide']>)();
          Object.assign(p, d);
          if (p.rev) Object.assign(p.rev, d);
          return p;
        },
      }
    : base;
  const agent = new FlowMgr(r.ft, ch, env, { ageMs, tcpScanMs: 15_000 }, () => host.now);
  const run = (): void => {
    const traps = host.traps.splice(0);
    for (const f of traps) agent.onTrap(f.frame);
    agent.tick(host.now);
    ch.settle();
  };
  return { agent, run };
}
