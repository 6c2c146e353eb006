/**
 * End to end, as root: flow export from a running compute node to the built-in collector (a child
 * process) and to nfcapd over IPFIX, with tshark decoding the datagrams; the collector killed with -9
 * during a burst and started again.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import { BIN, exited, parseFlowList, startInstance } from '../helpers/instance';
import { e2e } from '../helpers/requires';
import { until as waitFor, waitListening } from '../helpers/wait';

interface Child {
  proc: ChildProcess;
  out: () => string;
  done: Promise<number | null>;
}

function child(cmd: string, args: string[]): Child {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, out: () => out, done: exited(proc) };
}

function startCollector(port: number, data: string): Child {
  return child(process.execPath, [BIN, 'collector', '--listen', `127.0.0.1:${port}`, '--data', data]);
}

interface Stats {
  export: { exported: number; collectors: { name: string; connected: boolean; sent: number; acked: number; queued: number; dropped: number }[] };
}

e2e({ root: true, tools: ['ip', 'ping', 'iperf3', 'nfcapd', 'nfdump', 'tshark'] }).serial('records reach the collector and nfcapd; unsampled, their deltas add up to the flow -l stats; tshark decodes the IPFIX', async (t) => {
  t.timeout(120000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-export-'));
  const nfDir = path.join(dir, 'nf');
  fs.mkdirSync(nfDir);
  const conf = path.join(dir, 'agent.conf');
  fs.writeFileSync(conf, '[DEFAULT]\ncollectors=127.0.0.1:18087 ipfix://127.0.0.1:14740\n');
  const coll = startCollector(18087, path.join(dir, 'coll'));
  const nf = child('nfcapd', ['-C', 'none', '-b', '127.0.0.1', '-p', '14740', '-w', nfDir, '-t', '60']);
  const pcap = path.join(dir, 'ipfix.pcap');
  const shark = child('tshark', ['-i', 'lo', '-f', 'udp port 14740', '-w', pcap]);
  t.true(await waitFor(() => /listening on/.test(coll.out()) && /Capturing on/.test(shark.out()), 15000), coll.out() + shark.out());
  const i = await startInstance({
    networks: [{ name: 'net-xa', subnet: '10.52.1.0/24', gateway: '10.52.1.1' }],
    vms: [{ name: 'xaa', ip: '10.52.1.3', network: 'net-xa' }, { name: 'xab', ip: '10.52.1.4', network: 'net-xa' }],
    global_vrouter_config: { flow_export_rate: -1 },
  }, ['--agent-conf', conf]);
  const stats = (): Stats => JSON.parse(i.tool('agent', 'stats', '--json').stdout) as Stats;
  try {
    t.regex(i.out(), /flow export to 127\.0\.0\.1:18087 \(flow_export_rate -1\)/);
    t.regex(i.inVm('vm-xaa', ['ping', '-c', '6', '-i', '0.2', '10.52.1.4']).stdout, / 6 received/);
    const srv = spawn('ip', ['netns', 'exec', 'vm-xab', 'iperf3', '-s', '-1'], { stdio: 'ignore' });
    await waitListening('vm-xab', 5201);
    const cl = i.inVm('vm-xaa', ['iperf3', '-c', '10.52.1.4', '-n', '2M']);
    t.is(cl.status, 0, cl.stderr);
    srv.kill();
    // The aging visits (every second for so few flows) export the last deltas; then nothing changes.
    // Wait for that: everything sent acknowledged, and the collector's sums equal to the flow -l bytes.
    const snapshot = () => {
      const listed = parseFlowList(i.tool('flow', '-l').stdout);
      const byIndex = new Map(listed.map((f) => [f.index, Number((/Stats:\d+\/(\d+)/.exec(f.detail) as RegExpExecArray)[1])]));
      const agentFlows = JSON.parse(i.tool('agent', 'flows', '--json').stdout) as { index: number; uuid: string; proto: number }[];
      const q = JSON.parse(spawnSync(process.execPath, [BIN, 'collector', 'query', '--data', path.join(dir, 'coll'), '--json'], { encoding: 'utf8' }).stdout) as {
        flows: { flowuuid: string; bytes: number; direction: string }[];
      };
      return { byIndex, agentFlows, q };
    };
    let snap = snapshot();
    const settled = await waitFor(() => {
      const s = stats().export.collectors.find((c) => c.name === '127.0.0.1:18087');
      if (s === undefined || s.acked !== s.sent || s.queued !== 0) return false;
      snap = snapshot();
      return snap.agentFlows.every((f) => !snap.byIndex.has(f.index) || snap.q.flows.find((x) => x.flowuuid === f.uuid)?.bytes === snap.byIndex.get(f.index));
    }, 20000, 250);
    t.true(settled, 'the export settled: all acknowledged, the sums equal to flow -l (the assertions below say which differ)');
    const { byIndex, agentFlows, q } = snap;
    let compared = 0;
    for (const f of agentFlows) {
      const got = q.flows.find((x) => x.flowuuid === f.uuid);
      if (!byIndex.has(f.index)) continue; // closed and gone (TCP): its final record is there, flow -l no longer lists it
      t.truthy(got, `flow ${f.index} (${f.uuid}) is in the collector`);
      t.is(got?.bytes, byIndex.get(f.index), `Σ diff_bytes of flow ${f.index} = its flow -l bytes`);
      compared++;
    }
    t.true(compared >= 2, `${compared} flows compared`);
    const exported = stats().export.exported;
    t.true(exported >= 4);
  } finally {
    t.is(await i.stop(), 0);
    coll.proc.kill('SIGTERM');
    await coll.done;
    nf.proc.kill('SIGTERM');
    await nf.done;
    shark.proc.kill('SIGINT');
    await shark.done;
  }
  // nfcapd: no sequence errors, and the ICMP bytes it received are what the emulator counted.
  t.regex(nf.out(), /Sequence Errors: 0, Bad Packets: 0/, nf.out());
  const nfd = spawnSync('nfdump', ['-R', nfDir, '-o', 'csv'], { encoding: 'utf8' });
  t.is(nfd.status, 0, nfd.stderr);
  const rows = nfd.stdout.split('\n').filter((l) => /^\d{4}-/.test(l)).map((l) => l.split(','));
  const icmp = rows.filter((r) => r[7] === 'ICMP' && r[3] === '10.52.1.3');
  t.true(icmp.length >= 1, nfd.stdout);
  t.is(icmp.reduce((n, r) => n + Number(r[12]), 0) / 2, 6 * 98, 'the ping\'s 6 × 98 bytes (ingress and egress records of the local flow)');
  t.true(rows.some((r) => r[7] === 'TCP' && r[6] === '5201'), 'the iperf3 flows');
  // tshark decodes the datagrams as IPFIX with our template and addresses.
  const dec = spawnSync('tshark', ['-r', pcap, '-d', 'udp.port==14740,cflow', '-T', 'fields', '-e', 'cflow.version', '-e', 'cflow.srcaddr', '-e', 'cflow.octets'], { encoding: 'utf8' });
  t.is(dec.status, 0, dec.stderr);
  t.regex(dec.stdout, /^10\t.*10\.52\.1\.3/m);
  fs.rmSync(dir, { recursive: true, force: true });
});

e2e({ root: true, tools: ['ip', 'ping', 'python3'] }).serial('kill -9 of the collector during a burst: acknowledged records survive, the node keeps forwarding and counts its drops', async (t) => {
  t.timeout(180000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-export-'));
  const data = path.join(dir, 'coll');
  const conf = path.join(dir, 'agent.conf');
  // A 10 s age time: the scan then visits ~3000 flows/s (at 180 s it takes 180 s to come round), so
  // the bursts' records come within seconds.
  fs.writeFileSync(conf, '[DEFAULT]\ncollectors=127.0.0.1:18088\nflow_cache_timeout=10\n');
  let coll = startCollector(18088, data);
  t.true(await waitFor(() => /listening on/.test(coll.out()), 15000));
  const i = await startInstance({
    networks: [{ name: 'net-xk', subnet: '10.53.1.0/24', gateway: '10.53.1.1' }],
    vms: [{ name: 'xka', ip: '10.53.1.3', network: 'net-xk' }, { name: 'xkb', ip: '10.53.1.4', network: 'net-xk' }],
    global_vrouter_config: { flow_export_rate: -1 },
  }, ['--agent-conf', conf]);
  const stats = (): Stats['export']['collectors'][0] => (JSON.parse(i.tool('agent', 'stats', '--json').stdout) as Stats).export.collectors[0];
  const scan = (first: number, n: number): void => {
    // Paced (about 2000 new flows a second) so that the TAP queue and the hold limit take them all.
    const r = i.inVm('vm-xka', ['python3', '-c',
      `import socket, time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor p in range(${first},${first + n}):\n  s.sendto(b'x',('10.53.1.4',p))\n  if p % 100 == 0: time.sleep(0.05)`], 60000);
    t.is(r.status, 0, r.stderr);
  };
  try {
    // A burst: 3000 new flow pairs, each exported at its first visit (2 local records per flow).
    scan(1, 3000);
    t.true(await waitFor(() => stats().acked > 1000, 20000), JSON.stringify(stats()));
    const ackedBefore = stats().acked;
    coll.proc.kill('SIGKILL');
    await coll.done;
    t.true(await waitFor(() => !stats().connected, 5000));
    // Down: the node forwards, and a second burst overflows the exporter's queue.
    t.regex(i.inVm('vm-xka', ['ping', '-c', '3', '-i', '0.2', '10.53.1.4']).stdout, / 3 received/, 'forwarding goes on');
    scan(10000, 12000);
    t.true(await waitFor(() => stats().dropped > 0, 30000), `the queue filled: ${JSON.stringify(stats())}`);
    const held = stats();
    t.true(held.queued <= 20000, 'memory stays bounded');
    // Back: the collector cuts any torn line, keeps what it acknowledged, and takes what was held.
    coll = startCollector(18088, data);
    t.true(await waitFor(() => /listening on/.test(coll.out()), 15000));
    // Everything held during the outage goes out (new records keep coming as the flows age).
    const heldTotal = stats().sent + stats().queued;
    t.true(await waitFor(() => stats().connected && stats().acked >= heldTotal, 30000), `${heldTotal}: ${JSON.stringify(stats())}`);
    const ackedNow = stats().acked;
    const q = JSON.parse(spawnSync(process.execPath, [BIN, 'collector', 'query', '--data', data, '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 }).stdout) as {
      stored: number; records: { g: string; s: number }[];
    };
    t.true(q.stored >= ackedBefore, `stored ${q.stored} ≥ acknowledged before the kill ${ackedBefore}`);
    t.true(q.stored >= ackedNow, `stored ${q.stored} ≥ acknowledged so far ${ackedNow} (records keep coming: flows age)`);
    // Each batch stored once: a batch's records form one run of the log, in sequence order.
    let last = 0;
    let dup = 0;
    for (const r of q.records) {
      if (r.s < last) dup++;
      last = Math.max(last, r.s);
    }
    t.is(dup, 0, 'no batch stored twice');
    t.is(new Set(q.records.map((r) => r.g)).size, 1, 'one generator: the node');
  } finally {
    t.is(await i.stop(), 0);
    coll.proc.kill('SIGTERM');
    await coll.done;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
