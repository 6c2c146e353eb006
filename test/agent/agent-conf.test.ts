import test from 'ava';
import { collectorEndpoint, parseAgentConf, readAgentConf } from '../../src/agent/agent-conf';
import { userErrorOf as err } from '../helpers/user-error';

test('the keys of a 2.22 contrail-vrouter-agent.conf', (t) => {
  const warns: string[] = [];
  const c = parseAgentConf(
    [
      '[DEFAULT]',
      'log_level=SYS_NOTICE',
      'flow_cache_timeout=30',
      'disable_flow_collection=true',
      'collectors=127.0.0.1:8086 10.0.0.5 ipfix://127.0.0.1:4739',
      'http_server_port=18085',
      'log_flow=1',
      'frobnicate=yes',
      '[FLOWS]',
      'max_vm_flows=150',
      'max_system_linklocal_flows=4096',
      'max_vm_linklocal_flows=8000',
      'thread_count=4',
      '[CONTROL-NODE]',
      'server=10.0.0.1',
    ].join('\n'),
    'a.conf',
    (m) => warns.push(m),
  );
  t.is(c.flowCacheTimeout, 30);
  t.true(c.disableFlowCollection);
  t.deepEqual(c.collectors, ['127.0.0.1:8086', '10.0.0.5:8086', 'ipfix://127.0.0.1:4739']);
  t.is(c.httpServerPort, 18085);
  t.true(c.logFlow);
  t.is(c.maxVmFlows, 100, 'clamped to 100 %');
  t.is(c.maxSystemLinklocalFlows, 4096);
  t.is(c.maxVmLinklocalFlows, 4096, 'at most the system value');
  t.deepEqual(warns, ['a.conf: unknown keys, ignored: [DEFAULT] frobnicate']);
});

test('the shipped example parses without unknown keys', (t) => {
  const warns: string[] = [];
  const c = readAgentConf('examples/contrail-vrouter-agent.conf', (m) => warns.push(m));
  t.deepEqual(warns, []);
  t.is(c.flowCacheTimeout, 0);
});

test('values of the wrong type: one line naming section, key and value', (t) => {
  t.is(err(() => parseAgentConf('[DEFAULT]\nflow_cache_timeout=soon\n', 'x.conf')), 'x.conf: [DEFAULT] flow_cache_timeout = soon: expected seconds, an integer 0..65535 (0 = 180 s)');
  t.is(err(() => parseAgentConf('[DEFAULT]\ndisable_flow_collection=maybe\n', 'x.conf')), 'x.conf: [DEFAULT] disable_flow_collection = maybe: expected true or false (or 1 / 0)');
  t.regex(err(() => parseAgentConf('[FLOWS]\nmax_vm_flows=-3\n', 'x.conf')), /\[FLOWS\] max_vm_flows = -3: expected a percentage/);
  t.regex(err(() => parseAgentConf('[DEFAULT]\ncollectors=a:b:c\n', 'x.conf')), /\[DEFAULT\] collectors = a:b:c: expected a space-separated list/);
  t.regex(err(() => readAgentConf('/no/such.conf')), /no such agent configuration file/);
});

test('collectors: a port left out is the collector\'s 8086, or IPFIX\'s 4739 for ipfix://', (t) => {
  const c = parseAgentConf('[DEFAULT]\ncollectors=10.0.0.5 ipfix://nfcapd.example ipfix://127.0.0.1:9995\n', 'x.conf');
  t.deepEqual(c.collectors, ['10.0.0.5:8086', 'ipfix://nfcapd.example:4739', 'ipfix://127.0.0.1:9995']);
  t.deepEqual(c.collectors.map(collectorEndpoint), [
    { ipfix: false, host: '10.0.0.5', port: 8086 },
    { ipfix: true, host: 'nfcapd.example', port: 4739 },
    { ipfix: true, host: '127.0.0.1', port: 9995 },
  ]);
  t.regex(err(() => collectorEndpoint('ipfix://host')), /collectors: ipfix:\/\/host: expected host:port/);
  t.regex(err(() => parseAgentConf('[DEFAULT]\ncollectors=ipfix://h:0\n', 'x.conf')), /collectors = ipfix:\/\/h:0: expected/);
});
