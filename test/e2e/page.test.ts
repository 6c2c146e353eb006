/**
 * End to end, as root: the live page of a running instance in headless Chromium (Debian's chromium,
 * driven over the DevTools protocol by test/helpers/cdp.ts). Real traffic between two VMs (ping, UDP
 * datagrams, TCP connection attempts), then the page: its charts draw, the flow table lists the flows,
 * a filter typed into the box narrows the rows (server-side), the vif and dropstats panels fill. A
 * screenshot is kept in test-artifacts/page.png (CI keeps the directory).
 */
import * as path from 'path';
import { type ChildProcess, spawn } from 'child_process';
import { startInstance, twoVms } from '../helpers/instance';
import { launchChromium } from '../helpers/cdp';
import { e2e } from '../helpers/requires';
import { waitFor, waitListening } from '../helpers/wait';

const ARTIFACT = path.join(__dirname, '..', '..', 'test-artifacts', 'page.png');

/** From the VM: UDP datagrams to ports 6001…6005 of HOST (closed: the flows stay until they age). */
const UDP = `
import socket, sys
for p in range(6001, 6006):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'hello', (sys.argv[1], p)); s.close()
`;
/** A TCP server that accepts and holds its connections (an established flow, not torn down by FIN/RST). */
const TCP_SERVER = `
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 7001)); s.listen(4)
held = []
while True:
    c, a = s.accept(); held.append(c)
`;
/** A client that connects and holds the connection. */
const TCP_CLIENT = `
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7001), timeout=5); s.send(b'hi'); time.sleep(300)
`;

interface Row { index: number; proto: number; sport: number; dport: number; text: string }
const ROWS = `[...document.querySelectorAll('#flows tbody tr[data-flow-index]')].map((r) => ({
  index: +r.dataset.flowIndex, proto: +r.dataset.proto, sport: +r.dataset.sport, dport: +r.dataset.dport, text: r.textContent }))`;

e2e({ root: true, tools: ['chromium', 'ip', 'ping', 'python3'] }).serial('the live page: charts, flows with a typed filter, vifs, dropstats in headless Chromium', async (t) => {
  t.timeout(120_000 + Number(process.env.PAGE_LINGER_S ?? 0) * 1500);
  const i = await startInstance(twoVms('pg', 36), ['--introspect-listen', '127.0.0.1:0']);
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  const procs: ChildProcess[] = [];
  const t0 = Date.now();
  const mark = (what: string): void => t.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
  try {
    const m = /introspect (http:\/\/127\.0\.0\.1:(\d+)\/)/.exec(i.out());
    if (!m) throw new Error(`no introspect line in the banner:\n${i.out()}`);
    const url = m[1];
    t.is(i.inVm('vm-pga', ['ping', '-c', '3', '-i', '0.2', '10.36.1.4']).status, 0, 'ping a → b');
    t.is(i.inVm('vm-pga', ['python3', '-c', UDP, '10.36.1.4']).status, 0);
    procs.push(spawn('ip', ['netns', 'exec', 'vm-pgb', 'python3', '-c', TCP_SERVER], { stdio: 'ignore' }));
    await waitListening('vm-pgb', 7001);
    procs.push(spawn('ip', ['netns', 'exec', 'vm-pga', 'python3', '-c', TCP_CLIENT, '10.36.1.4'], { stdio: 'ignore' }));
    await waitFor(() => /:6005 /.test(i.tool('flow', '-l').stdout) && /:7001 /.test(i.tool('flow', '-l').stdout), { what: 'the UDP and TCP flows in flow -l' });
    mark('traffic');

    browser = await launchChromium({ width: 1280, height: 1100 });
    const b = browser;
    mark('chromium');
    await b.navigate(url);
    t.is(await b.evaluate<string>('document.title'), 'vrouter-emu — live');
    await b.waitFor(`+document.getElementById('chart-occupancy').dataset.points >= 3 && +document.getElementById('chart-drops').dataset.points >= 3`, 'both charts to draw 3 points');
    await b.waitFor(`document.querySelectorAll('#flows tbody tr[data-flow-index]').length > 0`, 'the flow rows');
    mark('charts and rows');
    const header = await b.evaluate<string>(`document.getElementById('table-info').textContent`);
    t.regex(header, /table \d+\+\d+ · active [1-9]\d* /);

    const all = await b.evaluate<Row[]>(ROWS);
    t.true(all.some((r) => r.proto === 1), 'the ping flow is listed');
    t.true(all.some((r) => r.proto === 6 && r.dport === 7001 && /SSrEEr/.test(r.text)), 'the established TCP flow, SSrEEr');
    t.is(new Set(all.map((r) => r.index)).size, all.length, 'one row per index');

    // Type a filter: only UDP rows, all five destinations.
    await b.type('#flow-filter', 'udp');
    await b.waitFor(`document.getElementById('flows').dataset.filter === 'udp'`, 'the rows of filter udp');
    const udp = await b.evaluate<Row[]>(ROWS);
    t.true(udp.length >= 5, `${udp.length} UDP rows`);
    t.true(udp.every((r) => r.proto === 17), 'only UDP rows');
    t.deepEqual([...new Set(udp.filter((r) => r.dport > 6000 && r.dport < 6006).map((r) => r.dport))].sort(), [6001, 6002, 6003, 6004, 6005]);

    // Narrower: one port and an address.
    await b.type('#flow-filter', 'port:6003 10.36.1.4');
    await b.waitFor(`document.getElementById('flows').dataset.filter === 'port:6003 10.36.1.4'`, 'the rows of filter port:6003');
    const one = await b.evaluate<Row[]>(ROWS);
    t.true(one.length >= 1 && one.length <= 2, `the flow (and its reverse): ${one.length} rows`);
    t.true(one.every((r) => r.proto === 17 && (r.sport === 6003 || r.dport === 6003) && r.text.includes('10.36.1.4')));

    // A filter that matches nothing, then a bad one: no rows, the error shown.
    await b.type('#flow-filter', 'vn:nosuchnetwork');
    await b.waitFor(`document.getElementById('flows').dataset.filter === 'vn:nosuchnetwork'`, 'the empty result');
    t.is((await b.evaluate<Row[]>(ROWS)).length, 0);
    await b.type('#flow-filter', 'port:99999');
    await b.waitFor(`/port:99999/.test(document.getElementById('flow-status').textContent)`, 'the filter error');

    // The vif table and the dropstats list.
    const vifs = await b.evaluate<string[]>(`[...document.querySelectorAll('#vifs tbody tr[data-vif]')].map((r) => r.textContent)`);
    t.true(vifs.some((v) => v.includes('pga')) && vifs.some((v) => v.includes('pgb')), 'both VMs\' vifs');
    const drops = await b.evaluate<{ label: string; value: number }[]>(`[...document.querySelectorAll('#drops li[data-drop]')].map((l) => ({ label: l.dataset.drop, value: +l.dataset.value }))`);
    t.true(drops.some((d) => d.label === 'Flow Table Full'));
    const firstZero = drops.findIndex((d) => d.value === 0);
    t.true(firstZero === -1 || drops.slice(firstZero).every((d) => d.value === 0), 'non-zero counters first');

    // The screenshot, of the whole table again. PAGE_LINGER_S=N (for the README's picture) first sends a
    // few more UDP flows a second for N seconds, so that the charts have a history.
    await b.type('#flow-filter', '');
    await b.waitFor(`document.getElementById('flows').dataset.filter === ''`, 'the unfiltered rows');
    const linger = Number(process.env.PAGE_LINGER_S ?? 0);
    for (let s = 0; s < linger; s++) {
      i.inVm('vm-pga', ['python3', '-c', `import socket\nfor p in range(${8000 + s * 20}, ${8000 + s * 20 + s % 7 * 3}):\n    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('10.36.1.4', p))`]);
      await new Promise((r) => setTimeout(r, 1000));
    }
    await b.screenshot(ARTIFACT);
    t.log(`screenshot: ${ARTIFACT}`);
    console.log(`screenshot of the live page: ${ARTIFACT}`);
    mark('done');
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await browser?.close();
    t.is(await i.stop(), 0, i.out());
  }
});
