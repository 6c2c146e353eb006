/**
 * The agent a replay (or a plan's combination) runs with, read from the same files `start` takes:
 * agent.conf (`--agent-conf`: flow_cache_timeout, max_vm_flows), global-vrouter-config
 * (`--global-config`: flow_export_rate, protocol-based aging), a VMI object (`--vmi`: its fat-flow
 * protocols) or fat-flow rules on the command line (`--fat-flow udp/53`), and overrides
 * (`--flow-cache-timeout S`, `--flow-export-rate N`).
 * @module
 */
import { AGENT_CONF_DEFAULTS, readAgentConf } from '../agent/agent-conf';
import { agentFlowConfig } from '../agent/assembly';
import { MAX_FAT_FLOW_ENTRIES, fatFlowProtocol, inlineOrFile, parseGlobalVrouterConfig, parseVmi } from '../agent/contrail-config';
import type { FlowMgrConfig } from '../agent/flow-mgr';
import { UserError } from '../errors';
import type { ModuleParams } from '../params/module-params';
import { Parsed, opt, optInt } from '../cli/args';

export const AGENT_OPTS = {
  '--agent-conf': { value: true },
  '--global-config': { value: true },
  '--vmi': { value: true },
  '--fat-flow': { value: true, repeat: true },
  '--flow-cache-timeout': { value: true },
  '--flow-export-rate': { value: true },
};
export const AGENT_USAGE = '[--agent-conf FILE] [--global-config FILE] [--vmi FILE] [--fat-flow PROTO/PORT]... [--flow-cache-timeout S] [--flow-export-rate N]';

/** What the files and options say, before the module parameters size the agent. */
export interface AgentFiles {
  flowCacheTimeoutS: number;
  maxVmFlows: number;
  tcpFlowScanInterval: number;
  agingTimeouts: ReturnType<typeof parseGlobalVrouterConfig>['agingTimeouts'];
  exportRate: number;
  /** (proto << 16) | port. */
  fatFlow: number[];
  /** The fat-flow rules as text, "udp/53". */
  fatFlowText: string[];
}

/** Parse one `PROTO/PORT` rule (tcp, udp, sctp, icmp or a number; port 0 = any). @throws UserError */
export function parseFatFlow(s: string, what = '--fat-flow'): number {
  const m = /^([A-Za-z]+|\d+)\/(\d+)$/.exec(s);
  const proto = m ? fatFlowProtocol(/^\d+$/.test(m[1]) ? Number(m[1]) : m[1].toLowerCase()) : -1;
  const port = m ? Number(m[2]) : -1;
  if (proto < 0 || !(port >= 0 && port <= 65535)) throw new UserError(`${what} ${s}: expected PROTO/PORT, e.g. udp/53 (tcp, udp, sctp, icmp or a number; port 0..65535, 0 = any)`);
  return (proto << 16) | port;
}

/** Read the agent's files and options. @throws UserError naming the file or option. */
export function agentFiles(p: Parsed): AgentFiles {
  const confFile = opt(p, '--agent-conf');
  const conf = confFile ? readAgentConf(confFile) : { ...AGENT_CONF_DEFAULTS, collectors: [] };
  const gFile = opt(p, '--global-config');
  const g = gFile ? parseGlobalVrouterConfig(inlineOrFile(gFile, '.', 'replay', '--global-config').value, gFile, 'global-vrouter-config') : undefined;
  const fat: number[] = [];
  const vmiFile = opt(p, '--vmi');
  if (vmiFile) {
    const src = inlineOrFile(vmiFile, '.', 'replay', '--vmi');
    for (const [proto, port] of parseVmi(src.value, src.where, 'virtual-machine-interface').fatFlow) fat.push((proto << 16) | port);
  }
  for (const s of p.opts.get('--fat-flow') ?? []) {
    const rule = parseFatFlow(s);
    if (!fat.includes(rule)) fat.push(rule);
  }
  if (fat.length > MAX_FAT_FLOW_ENTRIES) throw new UserError(`--fat-flow: ${fat.length} rules: an interface holds at most ${MAX_FAT_FLOW_ENTRIES}`);
  const rate = opt(p, '--flow-export-rate') !== undefined ? optInt(p, '--flow-export-rate', 0) : g?.flowExportRate ?? 1000;
  if (rate < 0) throw new UserError(`--flow-export-rate ${rate}: expected flows per second, 0 to export nothing`);
  return {
    flowCacheTimeoutS: opt(p, '--flow-cache-timeout') !== undefined ? optInt(p, '--flow-cache-timeout', 0) : conf.flowCacheTimeout,
    maxVmFlows: conf.maxVmFlows,
    tcpFlowScanInterval: conf.tcpFlowScanInterval,
    agingTimeouts: g?.agingTimeouts ?? [],
    exportRate: conf.disableFlowCollection ? 0 : rate,
    fatFlow: fat,
    fatFlowText: fat.map(fatFlowText),
  };
}

const PROTO_TEXT: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 132: 'sctp' };

export function fatFlowText(rule: number): string {
  const proto = rule >>> 16;
  return `${PROTO_TEXT[proto] ?? proto}/${rule & 0xffff}`;
}

/** The agent's configuration for a table of these parameters (aging scan sized by the table, as start does). */
export function agingFor(params: Pick<ModuleParams, 'vr_flow_entries' | 'vr_oflow_entries'>, f: AgentFiles, flowCacheTimeoutS = f.flowCacheTimeoutS): FlowMgrConfig {
  return agentFlowConfig(params, { flowCacheTimeout: flowCacheTimeoutS, tcpFlowScanInterval: f.tcpFlowScanInterval, maxVmFlows: f.maxVmFlows }, f.agingTimeouts);
}
