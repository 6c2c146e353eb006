/**
 * `vrouter-emu agent flows`: the agent's view of its flows, read through the flow manager's read API
 * (FlowMgr.flows) and the kernel entries.
 */
import test from 'ava';
import { agentFlows, agentFlowsText } from '../../src/cli/agent-flows';
import { tcpFrame } from '../../src/io/frame-build';
import { rx } from '../helpers/test-host';
import { from, node } from '../helpers/compute-node';

test('a passed pair and a denied pair: index order, reverse, networks, action letters, aging table, rule, log', (t) => {
  const n = node();
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40000, dport: 80, flags: 'S' }), n.vifOf('b1'));
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40001, dport: 22, flags: 'S' }), n.vifOf('b1'));
  n.run();
  n.host.advance(1500);
  const fl = agentFlows(n.agent, n.r.ft, n.cn.vnNames, n.host.now);
  t.is(fl.length, 4);
  t.deepEqual(fl.map((f) => f.index), [...fl.map((f) => f.index)].sort((a, b) => a - b), 'index order');
  const fwd = fl.find((f) => f.sport === 40000 && f.dport === 80);
  const rev = fl.find((f) => f.sport === 80 && f.dport === 40000);
  t.truthy(fwd && rev);
  t.is(fwd?.rindex, rev?.index);
  t.is(rev?.rindex, fwd?.index);
  t.deepEqual([fwd?.sip, fwd?.dip, fwd?.proto, fwd?.action], ['10.2.0.10', '10.3.0.10', 6, 'F']);
  t.deepEqual([fwd?.sourcevn, fwd?.destvn, rev?.sourcevn, rev?.destvn], ['default-domain:admin:blue', 'default-domain:admin:red', 'default-domain:admin:red', 'default-domain:admin:blue']);
  t.deepEqual(fwd?.aging, { protocol: 6, port: 0, timeoutSeconds: 180 });
  t.is(fwd?.rule, 'aaaaaaaa-0000-0000-0000-000000000080');
  t.true(fwd?.log && rev?.log);
  t.is(fwd?.idleSeconds, 1.5);
  t.regex(fwd?.uuid ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const denied = fl.find((f) => f.dport === 22);
  t.is(denied?.action, 'D(Policy)');
  t.false(denied?.log);
  const text = agentFlowsText(fl);
  t.true(text.startsWith('Flows held by the agent: 4\n'));
  t.regex(text, /Action:F log/);
});
