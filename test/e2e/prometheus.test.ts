/**
 * End to end, as root: a real Prometheus (Debian's) scrapes a running instance's `/metrics` every
 * second; after traffic between two VMs, Prometheus's HTTP API answers `vrouter_flow_entries` with the
 * number of entries `flow -l` lists, and the drop and vif series are there. Prometheus and the instance
 * are stopped and their files removed.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { exited, nsExists, parseFlowList, startInstance, twoVms } from '../helpers/instance';
import { e2e } from '../helpers/requires';
import { until } from '../helpers/wait';

function getJson(url: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve) => {
    http.get(url, (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (s += d));
      res.on('end', () => {
        let body: unknown = s;
        try {
          body = JSON.parse(s);
        } catch {
          // not JSON (e.g. /-/ready's text)
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    }).on('error', () => resolve({ status: 0, body: undefined }));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Prometheus's instant value of `query` (the first series), undefined when it has none yet. */
async function promValue(port: number, query: string): Promise<{ value?: number; series: number }> {
  const r = await getJson(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(query)}`);
  const res = r.body?.data?.result as { value: [number, string] }[] | undefined;
  if (r.status !== 200 || !res) return { series: 0 };
  return { value: res.length ? Number(res[0].value[1]) : undefined, series: res.length };
}

e2e({ root: true, tools: ['ip', 'ping', 'prometheus'] }).serial('Prometheus scrapes /metrics: vrouter_flow_entries is what flow -l lists after traffic', async (t) => {
  t.timeout(120000);
  const i = await startInstance(twoVms('pm', 47), ['--introspect-listen', '127.0.0.1:0']);
  const promDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-prom-'));
  let prom: ReturnType<typeof spawn> | undefined;
  let promExit: Promise<number | null> | undefined;
  let promOut = '';
  try {
    const m = /introspect http:\/\/127\.0\.0\.1:(\d+)\//.exec(i.out());
    if (!m) throw new Error(`no introspect line in the banner:\n${i.out()}`);
    const target = `127.0.0.1:${m[1]}`;
    const promPort = await freePort();
    const conf = path.join(promDir, 'prometheus.yml');
    fs.writeFileSync(conf, [
      'global:', '  scrape_interval: 1s', '  scrape_timeout: 1s', 'scrape_configs:', '  - job_name: vrouter-emu',
      '    static_configs:', `      - targets: ['${target}']`, '',
    ].join('\n'));
    prom = spawn('prometheus', [
      `--config.file=${conf}`, `--storage.tsdb.path=${path.join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    promExit = exited(prom);
    prom.stdout?.on('data', (d: Buffer) => (promOut += d.toString()));
    prom.stderr?.on('data', (d: Buffer) => (promOut += d.toString()));
    t.true(await until(async () => (await getJson(`http://127.0.0.1:${promPort}/-/ready`)).status === 200, 30000, 200), `Prometheus ready:\n${promOut}`);

    // Traffic: a ping each way makes the ICMP flow pair.
    t.regex(i.inVm('vm-pma', ['ping', '-c', '4', '-i', '0.2', '-W', '1', '10.47.1.4']).stdout, / 4 received/);
    const listed = (): number => parseFlowList(i.tool('flow', '-l').stdout).length;
    let last: { value?: number; series: number } = { series: 0 };
    let want = -1;
    const same = await until(async () => {
      want = listed();
      last = await promValue(promPort, 'vrouter_flow_entries');
      return want >= 2 && last.value === want;
    }, 30000, 500);
    t.true(same, `Prometheus's vrouter_flow_entries ${String(last.value)} = the ${want} entries flow -l lists\n${promOut.slice(-2000)}`);
    t.is(last.series, 1);
    // The scrape target is up, and the labelled series came through.
    t.is((await promValue(promPort, 'up{job="vrouter-emu"}')).value, 1);
    t.is((await promValue(promPort, 'vrouter_drops_total{reason="Flow Table Full"}')).value, 0);
    t.true(((await promValue(promPort, 'count(vrouter_drops_total)')).value ?? 0) > 40, 'every dropstats reason is a series');
    t.true(await until(async () => ((await promValue(promPort, 'sum(vrouter_vif_packets_total{direction="rx"})')).value ?? 0) >= 8, 10000, 500), 'the vif packets');
  } finally {
    if (prom && prom.exitCode === null) prom.kill('SIGTERM');
    if (promExit) await promExit;
    t.is(await i.stop(), 0);
    fs.rmSync(promDir, { recursive: true, force: true });
    fs.rmSync(i.dir, { recursive: true, force: true });
  }
  t.false(fs.existsSync(promDir), 'Prometheus files removed');
  t.false(nsExists('vm-pma') || nsExists('vm-pmb'), 'namespaces removed');
});
