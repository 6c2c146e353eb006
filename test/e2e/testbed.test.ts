/**
 * End to end, as root: real namespaces, TAP devices, ping, iperf3, nc and python3 traffic through a
 * running `vrouter-emu start`, checked with the vRouter tools on its control socket.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { BIN, Instance, dropstat, exited, nsExists, parseFlowList, startInstance, twoVms } from '../helpers/instance';
import { e2e } from '../helpers/requires';
import { waitFor, waitListening } from '../helpers/wait';

e2e({ root: true, tools: ['ip', 'ping'] }).serial('vm1 pings vm2; flow -l shows the ICMP pair forwarding with growing stats', async (t) => {
  t.timeout(90000);
  const i = await startInstance(twoVms('p1', 11));
  try {
    // One ping process (one ICMP id, so one flow pair), sampled while it runs.
    const ping = spawn('ip', ['netns', 'exec', 'vm-p1a', 'ping', '-c', '8', '-i', '0.25', '-W', '2', '10.11.1.4'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pingDone = exited(ping);
    let pingOut = '';
    ping.stdout.on('data', (d: Buffer) => (pingOut += d.toString()));
    const stats = (): number[] => {
      const l = parseFlowList(i.tool('flow', '-l').stdout).filter((f) => f.proto === 1 && f.sip === '10.11.1.3');
      return l.map((f) => Number((/Stats:(\d+)\//.exec(f.detail) as RegExpExecArray)[1]));
    };
    await waitFor(() => (stats()[0] ?? 0) > 0, { what: 'the ICMP flow to count packets' });
    const s1 = stats();
    await waitFor(() => (stats()[0] ?? 0) > s1[0], { what: `the ICMP flow's stats to grow past ${s1[0]}` });
    const s2 = stats();
    await pingDone;
    t.regex(pingOut, / 8 received, 0% packet loss/);
    t.is(s1.length, 1);
    t.true(s2[0] > s1[0], `stats grow: ${s1[0]} then ${s2[0]}`);
    const l1 = parseFlowList(i.tool('flow', '-l').stdout).filter((f) => f.proto === 1);
    t.is(l1.length, 2);
    const fwd = l1.find((f) => f.sip === '10.11.1.3') as (typeof l1)[0];
    const rev = l1.find((f) => f.sip === '10.11.1.4') as (typeof l1)[0];
    t.is(fwd.rindex, rev.index);
    t.is(rev.rindex, fwd.index);
    t.is(fwd.dport, 0, 'ICMP echo keys (id, 0)');
    t.is(fwd.sport, rev.sport);
    t.regex(fwd.detail, /Action:F, .*Stats:8\/784/);
    t.regex(rev.detail, /Action:F, .*Stats:8\/784/);
    // The vifs counted the traffic both ways.
    const vif = i.tool('vif', '--list').stdout;
    t.regex(vif, /vif0\/3 +OS: tap[0-9a-f]{8}-[0-9a-f]{2}\n +Type:Virtual HWaddr:00:00:5e:00:01:00 IPaddr:0\n +Vrf:1 Flags:PL3L2D MTU:1500/);
    t.regex(vif, /vif0\/4 [\s\S]*RX packets:([1-9]\d*) {2}bytes/);
  } finally {
    t.is(await i.stop(), 0);
  }
  t.false(nsExists('vm-p1a'), 'SIGTERM removed the namespaces');
  t.false(fs.existsSync(i.socket), 'and the socket');
});

e2e({ root: true, tools: ['ip', 'iperf3', 'nc'] }).serial('a TCP transfer shows SSrEEr; FIN and RST closes are evicted, or deleted by the agent with eviction off', async (t) => {
  t.timeout(120000);
  for (const eviction of ['on', 'off']) {
    const i = await startInstance(twoVms(`t${eviction}`, eviction === 'on' ? 12 : 13), ['--datapath-eviction', eviction]);
    const dst = eviction === 'on' ? '10.12.1.4' : '10.13.1.4';
    const [a, b] = [`vm-t${eviction}a`, `vm-t${eviction}b`];
    try {
      const srv = spawn('ip', ['netns', 'exec', b, 'iperf3', '-s', '-1', '-p', '5201'], { stdio: 'ignore' });
      await waitListening(b, 5201);
      const cl = spawn('ip', ['netns', 'exec', a, 'iperf3', '-c', dst, '-t', '3', '-p', '5201', '-J'], { stdio: ['ignore', 'pipe', 'ignore'] });
      const clDone = exited(cl);
      let json = '';
      cl.stdout.on('data', (d: Buffer) => (json += d.toString()));
      const iperfFlows = () => parseFlowList(i.tool('flow', '-l').stdout).filter((f) => f.proto === 6 && (f.dport === 5201 || f.sport === 5201));
      await waitFor(() => { const l = iperfFlows(); return l.length >= 4 && l.every((f) => /TCP:SSrEEr, /.test(f.detail)); }, { what: `iperf3's control and data connections established both ways (${eviction})` });
      const during = iperfFlows();
      t.true(during.length >= 4, `control and data connections, both directions (${eviction})`);
      for (const f of during) t.regex(f.detail, /TCP:SSrEEr, /, `${eviction}: ${f.sip}:${f.sport}`);
      await clDone;
      srv.kill();
      const res = JSON.parse(json) as { end: { sum_received: { bytes: number } } };
      t.true(res.end.sum_received.bytes > 1e6, 'the transfer completed');
      // An RST: a connection refused by a closed port.
      const nc = i.inVm(a, ['nc', '-z', '-w', '2', dst, '9']);
      t.not(nc.status, 0);
      const tcpFlows = (): number => parseFlowList(i.tool('flow', '-l').stdout).filter((f) => f.proto === 6).length;
      if (eviction === 'on') {
        await waitFor(() => tcpFlows() === 0, { timeoutMs: 5000, what: 'the closed and reset connections to be evicted' });
        const after = tcpFlows();
        t.is(after, 0, 'closed and reset connections were evicted');
        const evicted = i.tool('flow', '-l', '--show-evicted').stdout;
        t.regex(evicted, /Flags:E, /);
      } else {
        t.notRegex(i.tool('flow', '-l', '--show-evicted').stdout, /Flags:E, /, 'nothing is evicted with eviction off');
        // The agent's TCP scan (a sweep every 15 s at most) deletes the DEAD pairs.
        await waitFor(() => tcpFlows() === 0, { timeoutMs: 30000, intervalMs: 500, what: 'the agent to delete the DEAD pairs' });
        t.is(tcpFlows(), 0, 'DEAD pairs deleted by the agent');
      }
    } finally {
      t.is(await i.stop(), 0);
    }
  }
});

e2e({ root: true, tools: ['ip', 'iperf3', 'python3'] }).serial('a UDP port scan fills the small table: Flow Table Full while an established TCP transfer keeps going', async (t) => {
  t.timeout(120000);
  const i = await startInstance(twoVms('f1', 14), ['--params', 'module-params/small.conf']);
  try {
    const srv = spawn('ip', ['netns', 'exec', 'vm-f1b', 'iperf3', '-s', '-1'], { stdio: 'ignore' });
    await waitListening('vm-f1b', 5201);
    const cl = spawn('ip', ['netns', 'exec', 'vm-f1a', 'iperf3', '-c', '10.14.1.4', '-t', '5', '-J'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const clDone = exited(cl);
    let json = '';
    cl.stdout.on('data', (d: Buffer) => (json += d.toString()));
    await waitFor(() => parseFlowList(i.tool('flow', '-l').stdout).some((f) => f.proto === 6 && f.dport === 5201 && /TCP:SSrEEr, /.test(f.detail)), { what: 'the iperf3 transfer to be established' });
    // 20 000 new flows for 1 152 entries: the VM's TAP queue drops part of a burst sent next to the
    // iperf3 stream (a CI run of 4 000 ports once had too few reach the datapath to fill the table).
    const scan = i.inVm('vm-f1a', [
      'python3', '-c',
      "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor p in range(1, 20001):\n  try: s.sendto(b'x', ('10.14.1.4', p))\n  except OSError: pass",
    ]);
    t.is(scan.status, 0, scan.stderr);
    await clDone;
    srv.kill();
    const res = JSON.parse(json) as { end: { sum_received: { bytes: number } } };
    t.true(res.end.sum_received.bytes > 1e6, 'the established transfer kept going');
    const ds = i.tool('dropstats').stdout;
    const fl = i.tool('flow', '-l').stdout;
    t.true(dropstat(ds, 'Flow Table Full') > 0, `${/^Entries: .*$/m.exec(fl)?.[0]}\n${ds}`);
    t.regex(fl, /^Flow table\(size 147456, entries 1152\)$/m);
    const used = /Used Overflow entries (\d+)/.exec(fl);
    t.true(used !== null && Number(used[1]) > 100, 'the overflow entries are in use');
  } finally {
    t.is(await i.stop(), 0);
  }
});

e2e({ root: true, tools: ['ip', 'python3', 'ping'] }).serial('garbage frames written into a TAP are counted, and a deleted TAP marks its vif down', async (t) => {
  t.timeout(120000);
  const i = await startInstance(twoVms('g1', 15));
  try {
    // 100 000 random frames (random lengths, random bytes; some with the IPv4 ethertype) from inside
    // the VM through a packet socket on its eth0, which the TAP hands to the datapath.
    const gen = i.inVm('vm-g1a', [
      'python3', '-c',
      [
        'import socket, random',
        'random.seed(7)',
        "s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('eth0', 0))",
        'n=0',
        'for k in range(100000):',
        '  b=bytearray(random.getrandbits(8) for _ in range(random.randint(14, 120)))',
        '  if k % 3 == 0: b[12:14]=b"\\x08\\x00"',
        '  try: s.send(bytes(b)); n+=1',
        '  except OSError: pass',
        'print(n)',
      ].join('\n'),
    ], 120000);
    t.is(gen.status, 0, gen.stderr);
    t.true(Number(gen.stdout.trim()) > 90000);
    const garbage = (s: string): number => dropstat(s, 'Invalid Protocol') + dropstat(s, 'Pull Fails');
    await waitFor(() => garbage(i.tool('dropstats').stdout) > 1000, { what: 'the garbage frames to be counted' });
    const ds = i.tool('dropstats').stdout;
    t.true(dropstat(ds, 'Invalid Protocol') + dropstat(ds, 'Pull Fails') > 1000, ds);
    const ping = i.inVm('vm-g1a', ['ping', '-c', '2', '-i', '0.2', '-W', '2', '10.15.1.4']);
    t.regex(ping.stdout, / 2 received/, 'still forwarding');
    // The VM takes its link down: frames for it are lost (TX discards), its vif stays; up again, it works.
    spawnSync('ip', ['-n', 'vm-g1b', 'link', 'set', 'eth0', 'down']);
    i.inVm('vm-g1a', ['ping', '-c', '2', '-i', '0.2', '-W', '1', '10.15.1.4']);
    spawnSync('ip', ['-n', 'vm-g1b', 'link', 'set', 'eth0', 'up']);
    spawnSync('ip', ['-n', 'vm-g1b', 'route', 'replace', 'default', 'via', '10.15.1.1']);
    t.true(dropstat(i.tool('dropstats').stdout, 'IF TX Discard') > 0);
    t.notRegex(i.out(), /went away/, 'a link down is not a deleted TAP');
    const back = i.inVm('vm-g1a', ['ping', '-c', '2', '-i', '0.2', '-W', '2', '10.15.1.4']);
    t.regex(back.stdout, / 2 received/, 'forwarding again after the link came back');
    // The TAP goes away under the emulator.
    spawnSync('ip', ['-n', 'vm-g1b', 'link', 'del', 'eth0']);
    await waitFor(() => /went away/.test(i.out()), { what: 'the deleted TAP to be noticed' });
    t.regex(i.out(), /vif0\/4 \(tap[0-9a-f-]+\) went away \(E[A-Z]+\); marked down/);
    const vif = i.tool('vif', '--list');
    t.is(vif.status, 0);
    t.regex(vif.stdout, /vif0\/4 +OS: NULL/);
    t.regex(i.tool('flow', '-l').stdout, /^Flow table/m, 'the instance keeps running');
  } finally {
    t.is(await i.stop(), 0);
  }
});

e2e({ root: true, tools: ['ip', 'setpriv'] }).serial('bad input: not root, invalid topology, names taken — one line, exit 2, nothing left behind', (t) => {
  t.timeout(60000);
  const dir = fs.mkdtempSync('/tmp/vremu-bad-');
  const run = (args: string[], asUser?: string) =>
    asUser
      ? spawnSync('setpriv', ['--reuid', asUser, '--regid', asUser, '--clear-groups', process.execPath, BIN, ...args], { encoding: 'utf8', cwd: dir })
      : spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  const sock = path.join(dir, 's.sock');
  const user = run(['start', '--socket', sock], '65534');
  t.is(user.status, 2);
  t.is(user.stderr, 'vrouter-emu: start needs root to create TAP devices and network namespaces; run it with sudo\n');
  const topo = path.join(dir, 't.json');
  fs.writeFileSync(topo, JSON.stringify({ networks: [{ name: 'n', subnet: '10.16.1.0/24', gateway: '10.16.1.1' }], vms: [{ name: 'x1', ip: '10.17.1.3', network: 'n' }] }));
  const bad = run(['start', '--topology', topo, '--socket', sock]);
  t.is(bad.status, 2);
  t.is(bad.stderr, `vrouter-emu: ${topo}: vms[0].ip: 10.17.1.3 is not a host address of n (10.16.1.0/24)\n`);
  fs.writeFileSync(topo, JSON.stringify(twoVms('b1', 16)));
  spawnSync('ip', ['netns', 'add', 'vm-b1b']);
  try {
    const taken = run(['start', '--topology', topo, '--socket', sock]);
    t.is(taken.status, 2);
    t.regex(taken.stderr, /^vrouter-emu: namespace vm-b1b \(VM b1b\) already exists; remove it with: ip netns del vm-b1b/);
    t.is(taken.stderr.split('\n').length, 2);
    t.false(nsExists('vm-b1a'), 'nothing was created');
  } finally {
    spawnSync('ip', ['netns', 'del', 'vm-b1b']);
  }
});

e2e({ root: true, tools: ['ip'] }).serial('a crashed run\'s leftovers are removed at the next start', async (t) => {
  t.timeout(90000);
  const topo = twoVms('c1', 18);
  const first: Instance = await startInstance(topo);
  const firstDone = exited(first.proc);
  first.proc.kill('SIGKILL');
  await firstDone;
  t.true(nsExists('vm-c1a'), 'kill -9 left the namespaces');
  // Another socket: the state files of all instances live in one directory, so the next start finds them.
  const socket2 = path.join(first.dir, 'second.sock');
  const again = spawn(process.execPath, [BIN, 'start', '--topology', path.join(first.dir, 'topology.json'), '--socket', socket2], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  again.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('Stop with Ctrl-C') || again.exitCode !== null, { timeoutMs: 30000, what: 'the second start to be ready' });
  t.regex(out, /removed namespace vm-c1a left by pid \d+/);
  t.regex(out, /vRouter running/);
  const againDone = exited(again);
  again.kill('SIGTERM');
  await againDone;
  t.false(nsExists('vm-c1a'));
  t.false(nsExists('vm-c1b'));
  t.false(fs.existsSync(first.socket), 'the dead instance\'s socket was removed');
  t.false(fs.existsSync(socket2));
});
