/**
 * End to end, as root: the agent's configuration with real traffic — agent.conf and global-vrouter-config
 * protocol aging, VMI fat flow, network policy, floating IPs to an outside namespace (seen by tcpdump
 * there), and reload by `config reload` and SIGHUP.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { exited, parseFlowList, startInstance } from '../helpers/instance';
import { e2e } from '../helpers/requires';
import { until, waitFor, waitListening } from '../helpers/wait';

/** A UDP server answering every datagram, on each port given. */
const UDP_ECHO = `
import socket, select, sys
socks = []
for p in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', int(p))); socks.append(s)
while True:
    for s in select.select(socks, [], [])[0]:
        d, a = s.recvfrom(2048); s.sendto(d, a)
`;

/**
 * N queries to HOST:PORT, each from its own client port (FIRST + k: distinct, where ephemeral ports
 * could repeat); prints the answers received.
 */
const UDP_QUERIES = `
import socket, sys
host, port, n, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ok = 0
for k in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', first + k))
    s.sendto(b'query %d' % k, (host, port))
    try:
        s.recvfrom(2048); ok += 1
    except socket.timeout:
        pass
    s.close()
print(ok)
`;

e2e({ root: true, tools: ['ip', 'python3'] }).serial('protocol aging (udp, 53, 5) and fat flow (udp, 53) with real UDP queries', async (t) => {
  t.timeout(120000);
  const conf = path.join(fs.mkdtempSync('/tmp/vremu-conf-'), 'contrail-vrouter-agent.conf');
  fs.writeFileSync(conf, '[DEFAULT]\nflow_cache_timeout=120\n[FLOWS]\nmax_vm_flows=100\n');
  const i = await startInstance({
    networks: [{ name: 'net-pa', subnet: '10.31.1.0/24', gateway: '10.31.1.1' }],
    vms: [
      { name: 'pac', ip: '10.31.1.3', network: 'net-pa' },
      { name: 'paf', ip: '10.31.1.4', network: 'net-pa', virtual_machine_interface: { virtual_machine_interface_fat_flow_protocols: { fat_flow_protocol: [{ protocol: 'udp', port: 53 }] } } },
      { name: 'pap', ip: '10.31.1.5', network: 'net-pa' },
    ],
    global_vrouter_config: { flow_aging_timeout_list: { flow_aging_timeout: [{ protocol: 'udp', port: 53, timeout_in_seconds: 5 }] } },
  }, ['--agent-conf', conf]);
  const servers = [
    spawn('ip', ['netns', 'exec', 'vm-paf', 'python3', '-c', UDP_ECHO, '53'], { stdio: 'ignore' }),
    spawn('ip', ['netns', 'exec', 'vm-pap', 'python3', '-c', UDP_ECHO, '53', '9999'], { stdio: 'ignore' }),
  ];
  try {
    t.regex(i.out(), /flow_cache_timeout 120 s \(.*contrail-vrouter-agent\.conf\)/);
    await waitListening('vm-paf', 53, 'udp');
    await waitListening('vm-pap', 53, 'udp');
    await waitListening('vm-pap', 9999, 'udp');
    const q = (dst: string, port: number, n: number, first: number): string =>
      i.inVm('vm-pac', ['python3', '-c', UDP_QUERIES, dst, String(port), String(n), String(first)], 60000).stdout.trim();
    t.is(q('10.31.1.4', 53, 100, 20000), '100', 'every query to the fat-flow server answered');
    t.is(q('10.31.1.5', 53, 100, 21000), '100', 'every query to the plain server answered');
    t.is(q('10.31.1.5', 9999, 1, 22000), '1');
    const udp = () => parseFlowList(i.tool('flow', '-l').stdout).filter((f) => f.proto === 17);
    const l = udp();
    const toFat = l.filter((f) => f.dip === '10.31.1.4' && f.dport === 53);
    const toPlain = l.filter((f) => f.dip === '10.31.1.5' && f.dport === 53);
    t.is(toFat.length, 1, 'fat flow: one pair for 100 client ports');
    t.is(toFat[0].sport, 0, 'the client port is zeroed in the key');
    t.regex(toFat[0].detail, /Action:F, .*Stats:100\//);
    t.is(l.filter((f) => f.sip === '10.31.1.4' && f.sport === 53).length, 1, 'and one reverse');
    t.is(toPlain.length, 100, 'without fat flow: one pair per client port');
    const agentFlows = i.tool('agent', 'flows').stdout;
    t.regex(agentFlows, /10\.31\.1\.3:0 +10\.31\.1\.4:53 .*\n.*aging \(17, 53\) 5s/, 'the (udp, 53) aging table');
    t.regex(agentFlows, /10\.31\.1\.3:\d+ +10\.31\.1\.5:9999 .*\n.*aging \(0, 0\) 120s/, 'the default table');
    // Idle, the port-53 flows go within a few seconds; the other UDP flow stays.
    // (The bound only tells the 5 s table from the 120 s default; the exact timing is the unit tests'.)
    const t0 = Date.now();
    await waitFor(() => !udp().some((f) => f.dport === 53 || f.sport === 53), { timeoutMs: 60000, intervalMs: 250, what: 'the port-53 flows to age out' });
    const took = (Date.now() - t0) / 1000;
    t.true(took < 60, `aged by the 5 s table, not the 120 s default (${took.toFixed(1)} s)`);
    const rest = udp();
    t.is(rest.length, 2, 'the UDP 9999 pair stays');
    t.true(rest.every((f) => f.dport === 9999 || f.sport === 9999));
  } finally {
    for (const s of servers) s.kill();
    t.is(await i.stop(), 0);
    fs.rmSync(path.dirname(conf), { recursive: true, force: true });
  }
});

const POLICY = (port80: 'pass' | 'deny' | 'allow') => ({
  'network-policy': {
    fq_name: ['default-domain', 'admin', 'web'],
    network_policy_entries: {
      policy_rule: [
        {
          rule_uuid: '11111111-0000-0000-0000-000000000080', direction: '>', protocol: 'tcp',
          src_addresses: [{ virtual_network: 'default-domain:admin:pblue' }], dst_addresses: [{ virtual_network: 'default-domain:admin:pred' }],
          dst_ports: [{ start_port: 80, end_port: 80 }], action_list: { simple_action: port80, log: true },
        },
        {
          rule_uuid: '22222222-0000-0000-0000-000000000443', direction: '>', protocol: 'tcp',
          src_addresses: [{ virtual_network: 'default-domain:admin:pblue' }], dst_addresses: [{ virtual_network: 'default-domain:admin:pred' }],
          dst_ports: [{ start_port: 443, end_port: 443 }], action_list: { simple_action: 'pass' },
        },
        {
          rule_uuid: '33333333-0000-0000-0000-000000000001', direction: '<>', protocol: 'icmp',
          src_addresses: [{ virtual_network: 'default-domain:admin:pblue' }], dst_addresses: [{ virtual_network: 'default-domain:admin:pred' }],
          action_list: { simple_action: 'deny' },
        },
      ],
    },
  },
});

const POLICY_TOPOLOGY = (port80: 'pass' | 'deny' | 'allow') => ({
  networks: [
    { name: 'pblue', subnet: '10.32.0.0/24', gateway: '10.32.0.1', network_policy_refs: [{ to: ['default-domain', 'admin', 'web'] }] },
    { name: 'pred', subnet: '10.33.0.0/24', gateway: '10.33.0.1', network_policy_refs: [{ to: ['default-domain', 'admin', 'web'] }] },
    { name: 'ppub', subnet: '198.51.100.0/24', gateway: '198.51.100.1', router_external: true, outside: { namespace: 'pout', ip: '198.51.100.254' } },
  ],
  vms: [
    { name: 'pb1', ip: '10.32.0.10', network: 'pblue', floating_ips: ['198.51.100.10'] },
    { name: 'pr1', ip: '10.33.0.10', network: 'pred' },
  ],
  network_policies: [POLICY(port80)],
});

e2e({ root: true, tools: ['ip', 'nc', 'ping'] }).serial('network policy: a deny rule drops with reason Policy, a pass rule forwards; reload by command and SIGHUP', async (t) => {
  t.timeout(120000);
  const i = await startInstance(POLICY_TOPOLOGY('pass'));
  const topoFile = path.join(i.dir, 'topology.json');
  const tcp80 = async (): Promise<boolean> => {
    const srv = spawn('ip', ['netns', 'exec', 'vm-pr1', 'nc', '-l', '-p', '80'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const srvDone = exited(srv);
    let got = '';
    srv.stdout.on('data', (d: Buffer) => (got += d.toString()));
    await waitListening('vm-pr1', 80);
    i.inVm('vm-pb1', ['sh', '-c', 'echo through-policy | nc -q 1 -w 2 10.33.0.10 80']);
    await until(() => got.includes('through-policy'), 2000);
    srv.kill();
    await srvDone;
    return got.includes('through-policy');
  };
  try {
    t.true(await tcp80(), 'blue → red TCP 80 passes');
    const ping = i.inVm('vm-pb1', ['ping', '-c', '2', '-W', '1', '10.33.0.10']);
    t.regex(ping.stdout, / 0 received/, 'ICMP is denied');
    const icmp = parseFlowList(i.tool('flow', '-l').stdout).filter((f) => f.proto === 1);
    t.is(icmp.length, 2);
    for (const f of icmp) t.regex(f.detail, /Action:D\(Policy\)/);
    t.regex(i.tool('agent', 'flows').stdout, /10\.32\.0\.10:\d+ +10\.33\.0\.10:0 .*Action:D\(Policy\)\n.*VN default-domain:admin:pblue -> default-domain:admin:pred .*rule 33333333-0000-0000-0000-000000000001/);
    // Port 22 is in no rule: the implicit deny between the rule's networks.
    t.not(i.inVm('vm-pb1', ['nc', '-z', '-w', '2', '10.33.0.10', '22']).status, 0);
    t.regex(i.tool('flow', '-l').stdout, /10\.32\.0\.10:\d+ +10\.33\.0\.10:22 .*\n.*Action:D\(Policy\)/, 'the implicit deny of the pair');

    // A bad reload is refused and the old configuration stays.
    fs.writeFileSync(topoFile, JSON.stringify(POLICY_TOPOLOGY('allow')));
    const bad = i.tool('config', 'reload');
    t.is(bad.status, 2);
    t.regex(bad.stderr, /topology\.json: network_policies\[0\]\.network_policy_entries\.policy_rule\[0\]\.action_list\.simple_action: "allow": expected "pass" or "deny"/);
    t.true(await tcp80(), 'still passes after the refused reload');
    // The rule turned to deny, applied by SIGHUP: a new connection is dropped by the rule.
    fs.writeFileSync(topoFile, JSON.stringify(POLICY_TOPOLOGY('deny')));
    i.proc.kill('SIGHUP');
    await waitFor(() => /SIGHUP: configuration reloaded/.test(i.out()), { what: 'the SIGHUP reload' });
    t.regex(i.out(), /SIGHUP: configuration reloaded: \d+ aging tables, 1 network policies/);
    t.false(await tcp80(), 'TCP 80 is denied after the reload');
    const l = parseFlowList(i.tool('flow', '-l').stdout).filter((f) => f.proto === 6 && f.dport === 80);
    t.true(l.length >= 1);
    for (const f of l) t.regex(f.detail, /Action:D\(Policy\)/);
    t.regex(i.tool('config', 'reload').stdout, /^configuration reloaded: \d+ aging tables, 1 network policies, 0 flow pairs re-evaluated/);
  } finally {
    t.is(await i.stop(), 0);
  }
});

e2e({ root: true, tools: ['ip', 'tcpdump', 'ping', 'python3', 'nc'] }).serial('floating IP: the VM reaches the outside namespace, which sees the floating IP; and back by DNAT', async (t) => {
  t.timeout(120000);
  const i = await startInstance(POLICY_TOPOLOGY('pass'));
  try {
    t.regex(i.out(), /floating IP 198\.51\.100\.10 \(ppub\) → pb1 10\.32\.0\.10/);
    // tcpdump in the outside namespace, then a ping from the VM to the outside host.
    const dump = spawn('ip', ['netns', 'exec', 'pout', 'tcpdump', '-n', '-l', '-i', 'eth0', '-c', '4', 'icmp'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    let ready = '';
    dump.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    dump.stderr.on('data', (d: Buffer) => (ready += d.toString()));
    await waitFor(() => ready.includes('listening') || dump.exitCode !== null, { what: 'tcpdump to listen' });
    const ping = i.inVm('vm-pb1', ['ping', '-c', '2', '-i', '0.3', '-W', '2', '198.51.100.254']);
    await until(() => dump.exitCode !== null, 5000); // -c 4: the two requests and two replies
    dump.kill();
    t.regex(ping.stdout, / 2 received/);
    t.regex(seen, /IP 198\.51\.100\.10 > 198\.51\.100\.254: ICMP echo request/, `tcpdump in the outside namespace:\n${seen}`);
    t.regex(seen, /IP 198\.51\.100\.254 > 198\.51\.100\.10: ICMP echo reply/);
    t.notRegex(seen, /10\.32\.0\.10/, 'the private address never leaves');
    const nat = parseFlowList(i.tool('flow', '-l').stdout).filter((f) => f.proto === 1);
    t.truthy(nat.find((f) => f.sip === '10.32.0.10' && /Action:N\(S\)/.test(f.detail)), 'forward: SNAT');
    t.truthy(nat.find((f) => f.dip === '198.51.100.10' && /Action:N\(D\)/.test(f.detail)), 'reverse: DNAT, keyed with the floating IP');

    // The outside host opens a TCP connection to the floating IP; the VM sees the outside address.
    const srv = spawn('ip', ['netns', 'exec', 'vm-pb1', 'python3', '-c',
      'import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("0.0.0.0",8080));s.listen(1);c,a=s.accept();print(a[0],c.recv(100).decode().strip(),flush=True)'],
    { stdio: ['ignore', 'pipe', 'ignore'] });
    let got = '';
    srv.stdout.on('data', (d: Buffer) => (got += d.toString()));
    await waitListening('vm-pb1', 8080);
    i.inVm('pout', ['sh', '-c', 'echo hello-fip | nc -q 1 -w 2 198.51.100.10 8080']);
    await until(() => srv.exitCode !== null, 3000);
    srv.kill();
    t.is(got.trim(), '198.51.100.254 hello-fip');
  } finally {
    t.is(await i.stop(), 0);
  }
});
