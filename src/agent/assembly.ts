/**
 * The agent's assembly: how the flow manager's settings follow from contrail-vrouter-agent.conf,
 * global-vrouter-config and the module parameters, the same for `start` (a compute node) and `replay`
 * (a capture offline, with the configuration's defaults). The real agent derives them in
 * AgentParam and FlowStatsCollector (reference vrouter-agent.md §3.2, §3.4).
 * @module
 */
import type { AgentConf } from './agent-conf';
import { FLOW_AGE_TIME_MS } from './aging';
import type { AgingTimeout } from './contrail-config';
import type { FlowMgrConfig } from './flow-mgr';
import type { ModuleParams } from '../params/module-params';

/**
 * The FlowMgr configuration: `flow_cache_timeout` 0 is the built-in 180 s, `tcp_flow_scan_interval`
 * in ms, `max_vm_flows` a percentage of the flow table (main and overflow entries) turned into a
 * number of entries, and global-vrouter-config's `flow_aging_timeout_list`.
 * @param params the table size (`vr_flow_entries`, `vr_oflow_entries`)
 * @param conf the agent.conf keys (AGENT_CONF_DEFAULTS when there is no file)
 * @param agingTimeouts flow_aging_timeout_list (none: only the default and TCP tables)
 */
export function agentFlowConfig(
  params: Pick<ModuleParams, 'vr_flow_entries' | 'vr_oflow_entries'>,
  conf: Pick<AgentConf, 'flowCacheTimeout' | 'tcpFlowScanInterval' | 'maxVmFlows'>,
  agingTimeouts?: AgingTimeout[],
): FlowMgrConfig {
  const ageS = conf.flowCacheTimeout;
  return {
    ageMs: ageS > 0 ? ageS * 1000 : FLOW_AGE_TIME_MS,
    tcpScanMs: conf.tcpFlowScanInterval * 1000,
    agingTimeouts,
    maxVmFlows: Math.floor(((params.vr_flow_entries + params.vr_oflow_entries) * conf.maxVmFlows) / 100),
  };
}
