/**
 * `vrouter-emu agent flows`: the agent's view of its flows (what `Snh_FetchAllFlowRecords` shows on a
 * 2.22 compute node, reduced to a listing): per flow its index and reverse, key, action, UUID, source and
 * destination virtual networks, aging table and its timeout, time since the last activity, the policy rule
 * that decided, and whether it is short or logged.
 * @module
 */
import type { FlowMgr } from '../agent/flow-mgr';
import { flowInfoNew } from '../agent/flow-state';
import { FlowTable, feAction, feDropReason, feKeyWord, feProto } from '../dp/flow-table';
import { VR_FLOW_ACTION_DROP, VR_FLOW_DR_NAMES, flowActionLetter } from '../dp/defs';
import { keyDport, keyIpString, keySport } from '../dp/proto-ip';

export interface AgentFlow {
  index: number;
  rindex: number;
  uuid: string;
  sip: string;
  sport: number;
  dip: string;
  dport: number;
  proto: number;
  action: string;
  sourcevn: string;
  destvn: string;
  aging: { protocol: number; port: number; timeoutSeconds: number };
  idleSeconds: number;
  rule: string;
  short: boolean;
  log: boolean;
}

/**
 * The flows the agent holds, in index order: the agent's side from its read API (FlowMgr.flows), the
 * key and action from the kernel entry.
 */
export function agentFlows(agent: FlowMgr, t: FlowTable, vnNames: string[], now: number): AgentFlow[] {
  const out: AgentFlow[] = [];
  const vn = (k: number): string => (k >= 0 && k < vnNames.length ? vnNames[k] : '__UNKNOWN__');
  const flows = agent.flows;
  const f = flowInfoNew();
  for (let i = 0; i < flows.total; i++) {
    if (!flows.read(i, f).held) continue;
    const c = agent.collectorOf(i);
    const k0 = feKeyWord(t, i, 0);
    const a = feAction(t, i);
    const drop = a === VR_FLOW_ACTION_DROP ? `(${VR_FLOW_DR_NAMES[feDropReason(t, i)] ?? feDropReason(t, i)})` : '';
    out.push({
      index: i,
      rindex: f.rindex,
      uuid: flows.uuidOf(i),
      sip: keyIpString(feKeyWord(t, i, 1)),
      sport: keySport(k0),
      dip: keyIpString(feKeyWord(t, i, 2)),
      dport: keyDport(k0),
      proto: feProto(t, i),
      action: flowActionLetter(a) + drop,
      sourcevn: vn(f.srcVn),
      destvn: vn(f.dstVn),
      aging: { protocol: c.proto, port: c.port, timeoutSeconds: c.ageMs / 1000 },
      idleSeconds: Math.max(0, (now - f.lastModifiedMs) / 1000),
      rule: f.rule,
      short: f.short,
      log: f.log,
    });
  }
  return out;
}

/** The listing, two lines per flow. */
export function agentFlowsText(flows: AgentFlow[]): string {
  const lines = [`Flows held by the agent: ${flows.length}`, ''];
  for (const f of flows) {
    const idx = `${String(f.index).padStart(6)}${f.rindex >= 0 ? `<=>${String(f.rindex).padEnd(6)}` : ' '.repeat(9)}`;
    lines.push(`${idx}   ${`${f.sip}:${f.sport}`.padEnd(21)} ${`${f.dip}:${f.dport}`.padEnd(21)} ${String(f.proto).padEnd(3)} Action:${f.action}${f.short ? ' short' : ''}${f.log ? ' log' : ''}`);
    lines.push(
      `        UUID ${f.uuid}  VN ${f.sourcevn} -> ${f.destvn}  aging (${f.aging.protocol}, ${f.aging.port}) ${f.aging.timeoutSeconds}s  idle ${f.idleSeconds.toFixed(1)}s  rule ${f.rule}`,
    );
  }
  return lines.join('\n') + '\n';
}
