/**
 * agent/assembly.ts: the FlowMgr configuration start and replay derive from agent.conf and the table size.
 */
import test from 'ava';
import { agentFlowConfig } from '../../src/agent/assembly';
import { AGENT_CONF_DEFAULTS } from '../../src/agent/agent-conf';

const params = { vr_flow_entries: 1024, vr_oflow_entries: 64 };

test('flow_cache_timeout 0 is the built-in 180 s; the defaults give a 15 s TCP scan and the whole table per VM', (t) => {
  t.deepEqual(agentFlowConfig(params, AGENT_CONF_DEFAULTS), { ageMs: 180_000, tcpScanMs: 15_000, agingTimeouts: undefined, maxVmFlows: 1088 });
});

test('flow_cache_timeout, tcp_flow_scan_interval in seconds; max_vm_flows a share of N+O rounded down; aging tables passed on', (t) => {
  const timeouts = [{ proto: 17, port: 53, timeoutS: 5 }];
  const c = agentFlowConfig(params, { flowCacheTimeout: 30, tcpFlowScanInterval: 20, maxVmFlows: 33 }, timeouts);
  t.deepEqual(c, { ageMs: 30_000, tcpScanMs: 20_000, agingTimeouts: timeouts, maxVmFlows: 359 });
});
