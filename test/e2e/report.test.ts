/**
 * End to end: the capacity report (src/capacity/report.ts) opened in headless Chromium (Debian's chromium,
 * driven over the DevTools protocol by test/helpers/cdp.ts) from a file: URL. The page loads nothing (no
 * script, no resource), every chart is an inline SVG that the browser lays out at its size, its mark groups
 * hold paths with non-empty geometry (getBBox), and the summary table shows the values. A full-page
 * screenshot is kept in test-artifacts/capacity-report.png (CI keeps the directory; docs/capacity-report.png
 * is one of these).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { writeReport } from '../../src/capacity/report';
import { launchChromium } from '../helpers/cdp';
import { e2e } from '../helpers/requires';
import { synthSweep, synthTimeline } from '../capacity/synthetic';

const ARTIFACT = path.join(__dirname, '..', '..', 'test-artifacts', 'capacity-report.png');

interface ChartInfo {
  name: string;
  width: number;
  height: number;
  marks: number;
  drawn: number;
}

/** Per chart: its laid-out size, its data-mark paths, and how many of them have a non-empty bounding box. */
const CHARTS = `[...document.querySelectorAll('figure.chart')].map((f) => {
  const svg = f.querySelector('svg');
  const r = svg.getBoundingClientRect();
  const paths = [...svg.querySelectorAll('g.role-mark path')].filter((p) => (p.getAttribute('d') || '').length > 0);
  const drawn = paths.filter((p) => { const b = p.getBBox(); return b.width > 0 || b.height > 0; }).length;
  return { name: f.dataset.chart, width: r.width, height: r.height, marks: paths.length, drawn };
})`;

e2e({ tools: ['chromium'] }).serial('the capacity report in headless Chromium: every chart drawn, the summary shown, nothing loaded', async (t) => {
  t.timeout(120_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-report-e2e-'));
  const n = 4096;
  const o = 512;
  const file = path.join(dir, 'report.html');
  await writeReport(file, {
    timeline: synthTimeline(n, o),
    sweep: synthSweep([2048, 4096, 8192, 16384], [256, 512, 1024], { n, o }),
    table: { entries: n, oentries: o },
    exportRate: 100,
    title: 'synth capture — vr_flow_entries=4096 vr_oflow_entries=512',
  });
  const b = await launchChromium({ width: 1280, height: 2000 });
  try {
    await b.navigate(pathToFileURL(file).href);
    t.is(await b.evaluate<string>('document.title'), 'synth capture — vr_flow_entries=4096 vr_oflow_entries=512 — vrouter-emu capacity report');
    const charts = await b.evaluate<ChartInfo[]>(CHARTS);
    t.deepEqual(charts.map((c) => c.name), ['occupancy', 'drops', 'flows', 'export', 'sweep-heatmap', 'sweep-occupancy']);
    for (const c of charts) {
      t.true(c.width > 300 && c.height > 150, `${c.name}: laid out at ${c.width}×${c.height}`);
      t.true(c.marks > 0, `${c.name}: has mark paths`);
      t.is(c.drawn, c.marks, `${c.name}: every mark path has geometry`);
    }
    t.is(charts.find((c) => c.name === 'sweep-heatmap')?.marks, 2 * 12 + 2);
    // Nothing fetched: no script element, no resource entries (inline SVG and CSS only).
    t.is(await b.evaluate<number>('document.scripts.length'), 0);
    t.is(await b.evaluate<number>(`performance.getEntriesByType('resource').length`), 0);
    const summary = await b.evaluate<Record<string, string>>(
      `Object.fromEntries([...document.querySelectorAll('#summary tr')].map((r) => [r.id, r.querySelector('td').textContent]))`,
    );
    t.is(summary['summary-peak-active'], `${n + o} entries`);
    t.is(summary['summary-peak-overflow'], `${o} entries`);
    t.regex(summary['summary-table-full'], /^[1-9]\d*$/);
    t.is(summary['summary-table-memory'], '576.0 KiB');
    t.is(summary['summary-smallest-no-drop'], 'vr_flow_entries=8192 vr_oflow_entries=256');
    await b.screenshot(ARTIFACT);
    const png = fs.readFileSync(ARTIFACT);
    t.is(png.subarray(1, 4).toString('latin1'), 'PNG');
    t.is(png.readUInt32BE(16), 1280, 'the screenshot is the page width');
    t.true(png.readUInt32BE(20) > 2000, 'the whole page, past the window');
    t.log(`screenshot ${ARTIFACT} (${png.readUInt32BE(16)}×${png.readUInt32BE(20)}, ${png.length} bytes)`);
  } catch (e) {
    t.log(b.log());
    throw e;
  } finally {
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
