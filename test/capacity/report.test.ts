/**
 * The capacity report (src/capacity/report.ts) on synthetic timelines and sweeps: every chart is well-formed
 * SVG with drawn marks (non-empty path data in its mark groups), the HTML holds every chart and the summary
 * values the test computes itself, with no script and no external URL; an empty timeline and an unwritable
 * directory are one-line UserErrors; files are replaced atomically.
 */
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { XMLValidator } from 'fast-xml-parser';
import {
  type ReportInput,
  chartSpecs,
  formatBytes,
  renderCharts,
  reportHtml,
  reportInterval,
  summarizeTimeline,
  thinTimeline,
  writeReport,
  writeSvgs,
} from '../../src/capacity/report';
import { smallestTable } from '../../src/capacity/answer';
import type { SweepResult, TimelineRow } from '../../src/capacity/types';
import { isUserError } from '../../src/errors';
import { userErrorOf } from '../helpers/user-error';
import { synthSweep, synthTimeline } from './synthetic';

const N = 4096;
const O = 512;
const NS = [2048, 4096, 8192, 16384];
const OS = [256, 512, 1024];

function input(over: Partial<ReportInput> = {}): ReportInput {
  return {
    timeline: synthTimeline(N, O),
    sweep: synthSweep(NS, OS, { n: N, o: O }),
    table: { entries: N, oentries: O },
    exportRate: 100,
    title: 'synth.pcap — small.conf',
    ...over,
  };
}

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-report-'));
}

/** The `d` attributes of the paths inside vega's mark groups of `kind` (line, area, rect) that draw data. */
function markPaths(svg: string, kind: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<g class="mark-${kind} role-mark[^"]*"[^>]*?(?:/>|>(.*?)</g>)`, 'gs');
  for (const m of svg.matchAll(re)) for (const p of (m[1] ?? '').matchAll(/<path\b[^>]*\sd="([^"]*)"/g)) out.push(p[1]);
  return out;
}

/** Points of an SVG path ("M0,1L2,3…" → 2). */
function points(d: string): number {
  return (d.match(/[ML]/g) ?? []).length;
}

test('six charts for a timeline and a sweep, each well-formed SVG with drawn marks and no warning', async (t) => {
  const warnings: string[] = [];
  const charts = await renderCharts(input(), { onWarning: (m) => warnings.push(m) });
  t.deepEqual(charts.map((c) => c.name), ['occupancy', 'drops', 'flows', 'export', 'sweep-heatmap', 'sweep-occupancy']);
  t.deepEqual(warnings, []);
  const kinds: Record<string, string> = { occupancy: 'line', drops: 'area', flows: 'line', export: 'line', 'sweep-heatmap': 'rect', 'sweep-occupancy': 'line' };
  for (const c of charts) {
    t.true(XMLValidator.validate(c.svg) === true, `${c.name}: ${JSON.stringify(XMLValidator.validate(c.svg))}`);
    t.regex(c.svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, c.name);
    t.true(c.title.length > 0);
    const ds = markPaths(c.svg, kinds[c.name]);
    t.true(ds.length > 0, `${c.name} has ${kinds[c.name]} marks`);
    for (const d of ds) t.regex(d, /^M-?[\d.]+,-?[\d.]+/, `${c.name}: non-empty path data`);
    t.true(c.svg.includes(c.title), `${c.name}: its title is in the picture`);
  }
  const by = new Map(charts.map((c) => [c.name, c.svg]));
  // Occupancy: the two lines have every interval (60 rows + the start), and the rules at N and O.
  const occ = markPaths(by.get('occupancy') as string, 'line');
  t.is(occ.length, 2);
  for (const d of occ) t.is(points(d), 61);
  t.true((by.get('occupancy') as string).includes(`vr_flow_entries N = ${N}`));
  t.true((by.get('occupancy') as string).includes(`vr_oflow_entries O = ${O}`));
  // Drops: one stacked area per dropstats label.
  t.is(markPaths(by.get('drops') as string, 'area').length, 3);
  for (const l of ['Flow Table Full', 'Flow Action Drop', 'Flow Queue Limit Exceeded']) t.true((by.get('drops') as string).includes(l), l);
  // Export: two series and the configured rate as a rule.
  t.is(markPaths(by.get('export') as string, 'line').length, 3);
  t.true((by.get('export') as string).includes('flow_export_rate = 100/s'));
  // Heat map: one cell per combination in each of its two maps, plus the outline of the answer in each.
  t.is(markPaths(by.get('sweep-heatmap') as string, 'rect').length, 2 * NS.length * OS.length + 2);
  // Lines: one per combination in each of the two panels.
  t.is(markPaths(by.get('sweep-occupancy') as string, 'line').length, 2 * NS.length * OS.length);
});

test('without a sweep: the four timeline charts; without drops the drops chart still draws (none)', async (t) => {
  const quiet = synthTimeline(N, O, 30, 0.3).map((r) => ({ ...r, drops: {} }));
  const charts = await renderCharts(input({ timeline: quiet, sweep: undefined, exportRate: undefined }));
  t.deepEqual(charts.map((c) => c.name), ['occupancy', 'drops', 'flows', 'export']);
  const drops = charts[1].svg;
  t.is(markPaths(drops, 'area').length, 1);
  t.regex(drops, /0 dropped in all \(none\)/);
  t.regex(charts[3].svg, /no flow_export_rate configured/);
  t.false(charts[3].svg.includes('flow_export_rate = '));
});

test('the HTML holds every chart, the summary values and the smallest table, and nothing external', async (t) => {
  const inp = input();
  const html = await reportHtml(inp);
  for (const name of ['occupancy', 'drops', 'flows', 'export', 'sweep-heatmap', 'sweep-occupancy']) t.true(html.includes(`data-chart="${name}"`), name);
  t.is((html.match(/<svg /g) ?? []).length, 6);
  // Values computed here, independently of the report.
  const tl = inp.timeline;
  const peakActive = Math.max(...tl.map((r) => r.active));
  const peakOverflow = Math.max(...tl.map((r) => r.overflowUsed));
  const full = tl.reduce((a, r) => a + (r.drops['Flow Table Full'] ?? 0), 0);
  t.true(full > 0);
  const row = (id: string): string => new RegExp(`<tr id="summary-${id}"[^>]*>(.*?)</tr>`).exec(html)?.[1] ?? '';
  t.true(row('peak-active').includes(`${peakActive} entries`));
  t.true(row('peak-overflow').includes(`${peakOverflow} entries`));
  t.true(row('table-full').includes(`<td>${full}</td>`));
  t.true(row('table-memory').includes(`${(N + O) * 128} B`));
  t.true(row('table-memory').includes(formatBytes((N + O) * 128)));
  // The smallest table that drops nothing, by brute force over the sweep.
  const sweep = inp.sweep as SweepResult[];
  const clean = sweep.filter((r) => r.tableFull === 0).sort((a, b) => a.tableBytes - b.tableBytes || a.vr_flow_entries - b.vr_flow_entries);
  t.true(clean.length > 0 && clean.length < sweep.length);
  const best = clean[0];
  t.true(row('smallest-no-drop').includes(`vr_flow_entries=${best.vr_flow_entries} vr_oflow_entries=${best.vr_oflow_entries}`), row('smallest-no-drop'));
  t.true(row('smallest-no-drop').includes(formatBytes(best.tableBytes)));
  // The sweep table: one row per combination, the answer highlighted.
  t.is((/<table id="sweep">(.*?)<\/table>/s.exec(html)?.[1].match(/<tr/g) ?? []).length, sweep.length + 1);
  t.is((html.match(/<tr class="best">/g) ?? []).length, 1);
  // Self-contained: no script, no loaded resource, no external URL but SVG's namespace names.
  t.false(/<script/i.test(html));
  t.false(/\s(src|href)="(https?:)?\/\//i.test(html));
  t.false(/url\((['"])?https?:/i.test(html));
  t.deepEqual([...new Set(html.match(/https?:\/\/[^"'\s)]+/g) ?? [])].sort(), ['http://www.w3.org/1999/xlink', 'http://www.w3.org/2000/svg']);
  // Each chart's element ids are its own.
  const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
  t.is(new Set(ids).size, ids.length);
});

test('the title is escaped in the HTML', async (t) => {
  const html = await reportHtml(input({ title: 'a <b> & "c"', sweep: undefined }));
  t.true(html.includes('<h1>a &lt;b&gt; &amp; &quot;c&quot;</h1>'));
  t.false(html.includes('<b>'));
});

test('an empty timeline is a UserError naming the report', async (t) => {
  const msg = userErrorOf(() => chartSpecs(input({ timeline: [] })));
  t.regex(msg, /^report "synth\.pcap — small\.conf": the timeline has no rows/);
  t.false(msg.includes('\n'));
  const e = await t.throwsAsync(renderCharts(input({ timeline: [] })));
  t.true(isUserError(e));
  const dir = tmpdir();
  await t.throwsAsync(writeReport(path.join(dir, 'r.html'), input({ timeline: [] })), { message: /timeline has no rows/ });
  t.deepEqual(fs.readdirSync(dir), []);
});

test('writeReport replaces the file atomically and creates its directory', async (t) => {
  const dir = tmpdir();
  const file = path.join(dir, 'sub', 'report.html');
  fs.mkdirSync(path.dirname(file));
  fs.writeFileSync(file, 'old');
  await writeReport(file, input({ sweep: undefined }));
  t.regex(fs.readFileSync(file, 'utf8'), /^<!DOCTYPE html>/);
  t.deepEqual(fs.readdirSync(path.dirname(file)), ['report.html'], 'no temporary file left');
  const fresh = path.join(dir, 'new', 'deeper', 'r.html');
  await writeReport(fresh, input({ sweep: undefined }));
  t.true(fs.existsSync(fresh));
});

test('writeSvgs writes NAME.svg for each chart', async (t) => {
  const dir = path.join(tmpdir(), 'svgs');
  const files = await writeSvgs(dir, input());
  t.deepEqual(fs.readdirSync(dir).sort(), ['drops.svg', 'export.svg', 'flows.svg', 'occupancy.svg', 'sweep-heatmap.svg', 'sweep-occupancy.svg']);
  t.is(files.length, 6);
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    t.regex(text, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<svg /);
    t.true(XMLValidator.validate(text) === true, f);
  }
});

test('a directory that cannot be written is a UserError naming it', async (t) => {
  const dir = tmpdir();
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, '');
  const e1 = await t.throwsAsync(writeSvgs(path.join(file, 'svgs'), input({ sweep: undefined })));
  t.true(isUserError(e1));
  t.true(e1?.message.includes(path.join(file, 'svgs')), e1?.message);
  t.regex(e1?.message ?? '', /ENOTDIR/);
  const e2 = await t.throwsAsync(writeReport(path.join(file, 'r.html'), input({ sweep: undefined })));
  t.true(isUserError(e2));
  t.true(e2?.message.includes(file), e2?.message);
  t.false(e2?.message.includes('\n'));
  // A path that is a directory: the rename fails; nothing is left behind.
  fs.mkdirSync(path.join(dir, 'taken.html'));
  const e3 = await t.throwsAsync(writeReport(path.join(dir, 'taken.html'), input({ sweep: undefined })));
  t.true(isUserError(e3));
  t.deepEqual(fs.readdirSync(dir).sort(), ['a-file', 'taken.html']);
});

test('the interval is the most common step between rows, or the one given', (t) => {
  const rows = (ts: number[]): TimelineRow[] => ts.map((x) => ({ ...synthTimeline(N, O, 1)[0], t: x }));
  t.is(reportInterval(rows([0, 5, 10, 15, 25])), 5);
  t.is(reportInterval(rows([0, 0.5, 1, 1.5])), 0.5);
  t.is(reportInterval(rows([3])), 1);
  t.is(reportInterval(rows([0, 5, 10]), 2), 2);
});

test('the summary: peaks with their time, totals, the export mean over the capture', (t) => {
  const tl = synthTimeline(N, O, 20);
  tl[7].active = N + O + 1;
  tl[9].overflowUsed = O + 3;
  const s = summarizeTimeline(tl, 2);
  t.is(s.peakActive, N + O + 1);
  t.is(s.peakActiveT, tl[7].t);
  t.is(s.peakOverflow, O + 3);
  t.is(s.peakOverflowT, tl[9].t);
  t.is(s.duration, 19 + 2);
  t.is(s.frames, tl.reduce((a, r) => a + r.frames, 0));
  t.is(s.drops, tl.reduce((a, r) => a + Object.values(r.drops).reduce((x, y) => x + y, 0), 0));
  t.is(Math.round(s.exportMeanPerS * 1e6), Math.round((tl.reduce((a, r) => a + r.exportPerS * 2, 0) / 21) * 1e6));
});

test('a long timeline is thinned for drawing with its peaks kept and its counts summed', async (t) => {
  const tl = synthTimeline(N, O, 10_000);
  tl[4321].active = 99_999;
  tl[777].held = 12_345;
  const { rows, interval } = thinTimeline(tl, 1);
  t.true(rows.length <= 1500, `${rows.length} rows`);
  t.is(interval, Math.ceil(10_000 / 1500));
  t.is(Math.max(...rows.map((r) => r.active)), 99_999);
  t.is(Math.max(...rows.map((r) => r.held)), 12_345);
  const sum = (rs: TimelineRow[]): number => rs.reduce((a, r) => a + (r.drops['Flow Table Full'] ?? 0), 0);
  t.is(sum(rows), sum(tl));
  t.is(rows.reduce((a, r) => a + r.frames, 0), tl.reduce((a, r) => a + r.frames, 0));
  const charts = await renderCharts(input({ timeline: tl, sweep: undefined }));
  for (const d of markPaths(charts[0].svg, 'line')) t.true(points(d) <= 1501);
});

test('the smallest table that drops nothing: fewest bytes, ties by entries, the overflow bound', (t) => {
  const r = (n: number, o: number, tableFull: number, peakOverflow = 0, timeout = 0): SweepResult => ({
    vr_flow_entries: n, vr_oflow_entries: o, flow_cache_timeout: timeout, fatFlow: [], peakActive: 1000, peakOverflow, tableFull,
    tableBytes: (n + o) * 128, exportPerS: 0, exportPeakPerS: 0, timeline: [],
  });
  const sweep = [r(1024, 0, 5), r(2048, 1024, 0, 900), r(3072, 0, 0), r(2048, 2048, 0, 10), r(4096, 0, 0, 0, 30), r(4096, 0, 0, 0, 10)];
  t.is(smallestTable(sweep)?.vr_oflow_entries, 1024, '2048 + 1024 and 3072 + 0 tie on bytes: fewer vr_flow_entries wins');
  t.is(smallestTable(sweep, 0.5)?.vr_flow_entries, 3072, '2048 + 1024 has 90 % of its active entries in overflow');
  t.is(smallestTable(sweep, 0)?.vr_flow_entries, 3072);
  t.is(smallestTable([r(4096, 0, 0, 0, 30), r(4096, 0, 0, 0, 10)])?.flow_cache_timeout, 10);
  t.is(smallestTable([r(1024, 0, 5)]), undefined);
});

test('a sweep over flow_cache_timeout too: one pair of heat maps per setting; none drops nothing', async (t) => {
  const base = synthSweep([2048, 4096], [256], { n: N, o: O });
  const sweep = [...base, ...base.map((x) => ({ ...x, flow_cache_timeout: 30, fatFlow: ['udp/53'] }))].map((x) => ({ ...x, tableFull: x.tableFull + 1 }));
  const inp = input({ sweep });
  const charts = await renderCharts(inp);
  const heat = charts.find((c) => c.name === 'sweep-heatmap')?.svg ?? '';
  t.true(heat.includes('flow_cache_timeout=30, fat flow udp/53'));
  t.true(heat.includes('default settings'));
  t.is(markPaths(heat, 'rect').length, 2 * sweep.length, 'no outline: nothing qualifies');
  t.true(heat.includes('no combination drops nothing'));
  const html = await reportHtml(inp);
  t.regex(html, /<tr id="summary-smallest-no-drop"><th>smallest table that drops nothing<\/th><td>none<\/td><td class="note">none of the 4 combinations/);
});
