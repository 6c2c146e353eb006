/**
 * The capacity report's pictures: a replay's timeline (and a `plan` sweep's results) as charts, rendered
 * server-side to SVG with vega-lite (the chart grammar) compiled to vega (the renderer), with no browser and
 * no canvas: vega's headless view lays text out with its own width estimate and writes SVG markup.
 *
 *   occupancy        active entries against vr_flow_entries, overflow entries in use against vr_oflow_entries
 *   drops            drops per second by `dropstats` label, stacked
 *   flows            new flows per second, packets held in the hold queue
 *   export           export records per second against flow_export_rate, flows sampled away, the threshold
 *   sweep-heatmap    Flow Table Full drops and peak overflow share over vr_flow_entries × vr_oflow_entries
 *   sweep-occupancy  active and overflow entries over capture time, one line per combination
 *
 * `writeReport` puts them in one self-contained HTML file (inline SVG and CSS, a summary table, no scripts,
 * no external URL); `writeSvgs` writes the bare pictures. Both replace their files atomically.
 *
 * Inputs are the plain shapes of ./types (the replay and `plan` fill them). This module owns no state; it
 * is not on any hot path. Versions: vega 5.33 / vega-lite 5.14.1: 5.14 is the last vega-lite whose engines
 * allow Node 16 (5.15 on say >=18, 6.x is ESM-only and says >=22; vega 6 is ESM-only too). vega's d3
 * dependencies are ESM: on Node 16 the module runs from the esbuild bundle (dist/*.cjs), which turns them
 * into CommonJS; from source it runs under tsx on newer Node. @module
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { FE_SIZE, flowTableBytes } from '../dp/flow-table';
import { overflowShare, smallestTable } from './answer';
import { UserError } from '../errors';
import { writeFileAtomic } from '../lib/atomic-file';
import type { SweepResult, TimelineRow } from './types';

/** What the report shows. */
export interface ReportInput {
  /** The replay's timeline (the first combination's, for a sweep); at least one row. */
  timeline: TimelineRow[];
  /** A `plan` sweep's combinations, when there was one. */
  sweep?: SweepResult[];
  /** The table the timeline was replayed against: vr_flow_entries and vr_oflow_entries. */
  table: { entries: number; oentries: number };
  /** The configured flow_export_rate (flows/s), when export sampling was on. */
  exportRate?: number;
  /** The report's title (the capture, the parameters). */
  title: string;
  /** Seconds per timeline row (`--interval`); by default the most common step between rows, else 1. */
  interval?: number;
  /** `--max-overflow`: the highest peak overflow share (0…1) the smallest table that drops nothing may use. */
  maxOverflow?: number;
}

/** One rendered chart: `name` is its file name without `.svg`. */
export interface Chart {
  name: string;
  title: string;
  svg: string;
}

/** Options of the renderer. */
export interface RenderOptions {
  /** Called with each warning vega-lite or vega logs (by default they are dropped). */
  onWarning?: (msg: string) => void;
}

/** The drop-stat label of VP_DROP_FLOW_TABLE_FULL, as `dropstats` prints it (src/cli/dropstats.ts). */
export const FLOW_TABLE_FULL = 'Flow Table Full';

/** A timeline longer than this is thinned (peaks kept) before it is drawn: the SVG stays a few hundred kB. */
const MAX_POINTS = 1500;
const WIDTH = 1000;
const COLOR_ACTIVE = '#1f77b4';
const COLOR_OVERFLOW = '#d62728';
const COLOR_RULE = '#555555';

/** The shared look: titles left-aligned, light grid, legends on top. */
const CONFIG = {
  background: 'white',
  font: 'sans-serif',
  padding: 8,
  view: { stroke: '#dddddd' },
  title: { anchor: 'start', fontSize: 15, subtitleFontSize: 12, subtitleColor: '#555555', offset: 10 },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#eeeeee', domainColor: '#888888', tickColor: '#888888' },
  legend: { orient: 'top', labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', labelLimit: 400 },
  concat: { spacing: 24 },
} as const;

// ---------------------------------------------------------------------------------------------------------
// Numbers the charts and the summary share.

/** Seconds per row: `interval` if given, else the most common positive step between rows' `t`, else 1. */
export function reportInterval(timeline: readonly TimelineRow[], interval?: number): number {
  if (interval !== undefined && interval > 0) return interval;
  const counts = new Map<number, number>();
  for (let k = 1; k < timeline.length; k++) {
    const d = +(timeline[k].t - timeline[k - 1].t).toFixed(6);
    if (d > 0) counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  let best = 1;
  let n = 0;
  for (const [d, c] of counts) if (c > n || (c === n && d < best)) [best, n] = [d, c];
  return best;
}

/** Peaks and totals of a timeline. */
export interface TimelineSummary {
  frames: number;
  /** Seconds of capture time the timeline covers. */
  duration: number;
  peakActive: number;
  peakActiveT: number;
  peakOverflow: number;
  peakOverflowT: number;
  tableFull: number;
  drops: number;
  peakHeld: number;
  exportMeanPerS: number;
  exportPeakPerS: number;
  sampledAway: number;
}

/** Peaks (with the capture time of the first) and totals of `timeline`, whose rows are `interval` s long. */
export function summarizeTimeline(timeline: readonly TimelineRow[], interval: number): TimelineSummary {
  const s: TimelineSummary = {
    frames: 0, duration: 0, peakActive: 0, peakActiveT: 0, peakOverflow: 0, peakOverflowT: 0, tableFull: 0, drops: 0,
    peakHeld: 0, exportMeanPerS: 0, exportPeakPerS: 0, sampledAway: 0,
  };
  let exported = 0;
  for (const r of timeline) {
    s.frames += r.frames;
    if (r.active > s.peakActive) [s.peakActive, s.peakActiveT] = [r.active, r.t];
    if (r.overflowUsed > s.peakOverflow) [s.peakOverflow, s.peakOverflowT] = [r.overflowUsed, r.t];
    s.tableFull += r.drops[FLOW_TABLE_FULL] ?? 0;
    for (const v of Object.values(r.drops)) s.drops += v;
    s.peakHeld = Math.max(s.peakHeld, r.held);
    s.exportPeakPerS = Math.max(s.exportPeakPerS, r.exportPerS);
    exported += r.exportPerS * interval;
    s.sampledAway += r.sampledAway;
  }
  if (timeline.length > 0) s.duration = timeline[timeline.length - 1].t - timeline[0].t + interval;
  s.exportMeanPerS = s.duration > 0 ? exported / s.duration : 0;
  return s;
}

/** "udp/53 tcp/80" or "" — a combination's settings other than the table size. */
function variantOf(r: SweepResult): string {
  const parts: string[] = [];
  if (r.flow_cache_timeout > 0) parts.push(`flow_cache_timeout=${r.flow_cache_timeout}`);
  if (r.fatFlow.length > 0) parts.push(`fat flow ${r.fatFlow.join(',')}`);
  return parts.join(', ');
}

/** "vr_flow_entries=524288 vr_oflow_entries=8192[, flow_cache_timeout=…, fat flow …]". */
export function describeCombination(r: SweepResult): string {
  const v = variantOf(r);
  return `vr_flow_entries=${r.vr_flow_entries} vr_oflow_entries=${r.vr_oflow_entries}${v ? `, ${v}` : ''}`;
}

/** 69206016 → "66.0 MiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let v = n;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

function pct(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : 'n/a';
}

function num(v: number, digits = 1): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

// ---------------------------------------------------------------------------------------------------------
// Data for the charts.

/**
 * At most `max` rows: consecutive rows merged, levels (active, overflow, held, threshold) keeping the
 * highest, per-interval counts summed, per-second rates averaged — so peaks survive the thinning.
 * @returns the rows and the length of a merged row in seconds.
 */
export function thinTimeline(timeline: readonly TimelineRow[], interval: number, max = MAX_POINTS): { rows: TimelineRow[]; interval: number } {
  if (timeline.length <= max) return { rows: timeline.slice(), interval };
  const per = Math.ceil(timeline.length / max);
  const rows: TimelineRow[] = [];
  for (let k = 0; k < timeline.length; k += per) {
    const g = timeline.slice(k, k + per);
    const drops: Record<string, number> = {};
    for (const r of g) for (const [l, v] of Object.entries(r.drops)) drops[l] = (drops[l] ?? 0) + v;
    const sum = (f: (r: TimelineRow) => number): number => g.reduce((a, r) => a + f(r), 0);
    const peak = (f: (r: TimelineRow) => number): number => g.reduce((a, r) => Math.max(a, f(r)), 0);
    rows.push({
      t: g[0].t,
      frames: sum((r) => r.frames),
      active: peak((r) => r.active),
      overflowUsed: peak((r) => r.overflowUsed),
      newFlowsPerS: sum((r) => r.newFlowsPerS) / g.length,
      held: peak((r) => r.held),
      drops,
      aged: sum((r) => r.aged),
      evicted: sum((r) => r.evicted),
      exportPerS: sum((r) => r.exportPerS) / g.length,
      exportThreshold: peak((r) => r.exportThreshold),
      sampledAway: sum((r) => r.sampledAway),
    });
  }
  return { rows, interval: interval * per };
}

/** Per-interval values as steps: one point at each interval's start and one at the last interval's end. */
function steps<T extends object>(rows: readonly TimelineRow[], interval: number, f: (r: TimelineRow) => T): (T & { t: number })[] {
  const out = rows.map((r) => ({ t: r.t, ...f(r) }));
  if (rows.length > 0) out.push({ t: rows[rows.length - 1].t + interval, ...f(rows[rows.length - 1]) });
  return out;
}

/** End-of-interval levels, plotted at the interval's end, from an empty table at the capture's start. */
function levels<T extends object>(rows: readonly TimelineRow[], interval: number, f: (r: TimelineRow) => T, zero: T): (T & { t: number })[] {
  const out = rows.map((r) => ({ t: r.t + interval, ...f(r) }));
  if (rows.length > 0) out.unshift({ t: rows[0].t, ...zero });
  return out;
}

const X_TIME = { field: 't', type: 'quantitative', title: 'capture time (s)' } as const;

/** A horizontal rule at `y` with `label` above its left end. */
function rule(y: number, label: string): object[] {
  const data = { values: [{ y, label }] };
  return [
    { data, mark: { type: 'rule', color: COLOR_RULE, strokeDash: [6, 4] }, encoding: { y: { field: 'y', type: 'quantitative' } } },
    {
      data,
      mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 4, dy: -3, color: COLOR_RULE, fontSize: 11 },
      encoding: { y: { field: 'y', type: 'quantitative' }, x: { value: 0 }, text: { field: 'label' } },
    },
  ];
}

/** A line over capture time, coloured by `series` (fixed colours per series name; a legend when there are several). */
function seriesLayer(values: object[], fields: [string, string, string][], interpolate: string): object {
  return {
    data: { values },
    transform: [{ fold: fields.map((f) => f[0]), as: ['key', 'value'] }, { calculate: seriesExpr(fields), as: 'series' }],
    mark: { type: 'line', interpolate, strokeWidth: 1.6 },
    encoding: {
      x: X_TIME,
      y: { field: 'value', type: 'quantitative' },
      color: {
        field: 'series', type: 'nominal', title: null,
        scale: { domain: fields.map((f) => f[1]), range: fields.map((f) => f[2]) },
        ...(fields.length === 1 ? { legend: null } : {}),
      },
    },
  };
}

/** A vega expression mapping a folded field name to its series title. */
function seriesExpr(fields: [string, string, string][]): string {
  return fields.reduceRight((acc, [k, title]) => `datum.key === ${JSON.stringify(k)} ? ${JSON.stringify(title)} : ${acc}`, '""');
}

/** A chart with its title, and as subtitle the report's title over a line saying what is drawn. */
function top(title: string, subtitle: string[], body: object): TopLevelSpec {
  return { title: { text: title, subtitle }, config: CONFIG, ...body } as TopLevelSpec;
}

// ---------------------------------------------------------------------------------------------------------
// The charts.

/** A chart before rendering: its vega-lite specification. */
export interface ChartSpec {
  name: string;
  title: string;
  spec: TopLevelSpec;
}

function occupancySpec(rows: TimelineRow[], interval: number, input: ReportInput): ChartSpec {
  const { entries: n, oentries: o } = input.table;
  const title = 'Flow table occupancy';
  const active = levels(rows, interval, (r) => ({ active: r.active }), { active: 0 });
  const overflow = levels(rows, interval, (r) => ({ overflowUsed: r.overflowUsed }), { overflowUsed: 0 });
  const panel = (values: object[], field: string, name: string, color: string, limit: number, limitLabel: string): object => ({
    width: WIDTH,
    height: 200,
    layer: [seriesLayer(values, [[field, name, color]], 'linear'), ...rule(limit, limitLabel)],
    encoding: { y: { title: name } },
  });
  return {
    name: 'occupancy',
    title,
    spec: top(title, [input.title, `active entries at each interval's end (both directions of a flow count) and overflow entries in use`], {
      vconcat: [
        panel(active, 'active', 'active entries', COLOR_ACTIVE, n, `vr_flow_entries N = ${n}`),
        panel(overflow, 'overflowUsed', 'overflow entries in use', COLOR_OVERFLOW, o, `vr_oflow_entries O = ${o}`),
      ],
      resolve: { scale: { color: 'independent' } },
    }),
  };
}

function dropsSpec(rows: TimelineRow[], interval: number, input: ReportInput): ChartSpec {
  const title = 'Drops by dropstats label';
  const totals = new Map<string, number>();
  for (const r of rows) for (const [l, v] of Object.entries(r.drops)) if (v > 0) totals.set(l, (totals.get(l) ?? 0) + v);
  // Biggest first (bottom of the stack); every label has a value at every step so the stack lines up.
  const labels = [...totals.keys()].sort((a, b) => (totals.get(b) ?? 0) - (totals.get(a) ?? 0) || a.localeCompare(b));
  const values: { t: number; label: string; perS: number; order: number }[] = [];
  const shown = labels.length > 0 ? labels : ['no drops'];
  for (const p of steps(rows, interval, (r) => ({ drops: r.drops })))
    shown.forEach((label, order) => values.push({ t: p.t, label, perS: (p.drops[label] ?? 0) / interval, order }));
  const total = [...totals.values()].reduce((a, b) => a + b, 0);
  return {
    name: 'drops',
    title,
    spec: top(title, [input.title, `dropped frames per second, stacked; ${total} dropped in all${labels.length === 0 ? ' (none)' : ''}`], {
      width: WIDTH,
      height: 260,
      data: { values },
      mark: { type: 'area', interpolate: 'step-after', line: { strokeWidth: 0.8 } },
      encoding: {
        x: X_TIME,
        y: { field: 'perS', type: 'quantitative', stack: 'zero', title: 'dropped frames/s' },
        color: {
          field: 'label', type: 'nominal', title: 'dropstats', sort: shown,
          scale: labels.length > 0 ? { scheme: 'category10' } : { range: ['#bbbbbb'] },
        },
        order: { field: 'order', type: 'quantitative' },
      },
    }),
  };
}

function flowsSpec(rows: TimelineRow[], interval: number, input: ReportInput): ChartSpec {
  const title = 'New flows and held packets';
  const rate = steps(rows, interval, (r) => ({ newFlowsPerS: r.newFlowsPerS }));
  const held = levels(rows, interval, (r) => ({ held: r.held }), { held: 0 });
  return {
    name: 'flows',
    title,
    spec: top(title, [input.title, 'new flows per second over each interval; packets in the hold queue at its end'], {
      vconcat: [
        { width: WIDTH, height: 180, layer: [seriesLayer(rate, [['newFlowsPerS', 'new flows/s', '#2ca02c']], 'step-after')], encoding: { y: { title: 'new flows/s' } } },
        { width: WIDTH, height: 180, layer: [seriesLayer(held, [['held', 'held packets', '#9467bd']], 'linear')], encoding: { y: { title: 'held packets' } } },
      ],
      resolve: { scale: { color: 'independent' } },
    }),
  };
}

function exportSpec(rows: TimelineRow[], interval: number, input: ReportInput): ChartSpec {
  const title = 'Flow export';
  const rate = steps(rows, interval, (r) => ({ exportPerS: r.exportPerS, sampledAwayPerS: r.sampledAway / interval }));
  const threshold = levels(rows, interval, (r) => ({ exportThreshold: r.exportThreshold }), { exportThreshold: rows[0]?.exportThreshold ?? 0 });
  const configured = input.exportRate !== undefined && input.exportRate > 0;
  const top1 = [
    seriesLayer(rate, [['exportPerS', 'export records/s', '#ff7f0e'], ['sampledAwayPerS', 'flows sampled away/s', '#8c564b']], 'step-after'),
    ...(configured ? rule(input.exportRate as number, `flow_export_rate = ${input.exportRate}/s`) : []),
  ];
  return {
    name: 'export',
    title,
    spec: top(
      title,
      [input.title, `export records per second${configured ? ' against the configured flow_export_rate' : ' (no flow_export_rate configured)'}; the sampling threshold at each interval's end`],
      {
        vconcat: [
          { width: WIDTH, height: 200, layer: top1, encoding: { y: { title: 'per second' } } },
          {
            width: WIDTH, height: 140,
            layer: [seriesLayer(threshold, [['exportThreshold', 'sampling threshold (bytes)', '#17becf']], 'linear')],
            encoding: { y: { title: 'threshold (bytes)' } },
          },
        ],
        resolve: { scale: { color: 'independent' } },
      },
    ),
  };
}

function sweepHeatmapSpec(sweep: SweepResult[], input: ReportInput): ChartSpec {
  const title = 'Sweep: Flow Table Full drops and overflow use';
  const best = smallestTable(sweep, input.maxOverflow);
  const variants = [...new Set(sweep.map(variantOf))];
  const ns = [...new Set(sweep.map((r) => r.vr_flow_entries))].sort((a, b) => b - a);
  const os = [...new Set(sweep.map((r) => r.vr_oflow_entries))].sort((a, b) => a - b);
  const maxFull = Math.max(1, ...sweep.map((r) => r.tableFull));
  const cellWidth = Math.min(480, Math.max(160, os.length * 96));
  const values = sweep.map((r) => {
    const share = overflowShare(r);
    return {
      n: String(r.vr_flow_entries), o: String(r.vr_oflow_entries), variant: variantOf(r),
      tableFull: r.tableFull, share, best: r === best,
      fullDark: r.tableFull > 0 && Math.log1p(r.tableFull) > 0.6 * Math.log1p(maxFull),
      shareDark: share > 0.6,
    };
  });
  const axes = {
    x: { field: 'o', type: 'ordinal', sort: os.map(String), title: 'vr_oflow_entries', axis: { labelAngle: 0 } },
    y: { field: 'n', type: 'ordinal', sort: ns.map(String), title: 'vr_flow_entries' },
  };
  const bestLayer = { transform: [{ filter: 'datum.best' }], mark: { type: 'rect', fill: null, stroke: '#000000', strokeWidth: 3 }, encoding: axes };
  const heat = (variant: string, field: 'tableFull' | 'share'): object => ({
    width: cellWidth,
    height: { step: 36 },
    title: { text: field === 'tableFull' ? 'Flow Table Full drops' : 'peak overflow share (of active entries)', fontSize: 12, fontWeight: 'normal' },
    transform: [{ filter: `datum.variant === ${JSON.stringify(variant)}` }],
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          ...axes,
          color:
            field === 'tableFull'
              ? {
                  condition: { test: 'datum.tableFull === 0', value: '#d9f0d3' },
                  field: 'tableFull', type: 'quantitative', title: 'Flow Table Full', scale: { type: 'symlog', scheme: 'reds' },
                }
              : { field: 'share', type: 'quantitative', title: 'overflow share', scale: { domain: [0, 1], scheme: 'blues' }, legend: { format: '.0%' } },
        },
      },
      {
        mark: { type: 'text', fontSize: 11 },
        encoding: {
          ...axes,
          text: field === 'tableFull' ? { field: 'tableFull', type: 'quantitative', format: '.3~s' } : { field: 'share', type: 'quantitative', format: '.1%' },
          color: { condition: { test: field === 'tableFull' ? 'datum.fullDark' : 'datum.shareDark', value: 'white' }, value: 'black' },
        },
      },
      bestLayer,
    ],
  });
  const bestText = best ? `outlined: the smallest table that drops nothing, ${describeCombination(best)} (${formatBytes(best.tableBytes)})` : 'no combination drops nothing';
  return {
    name: 'sweep-heatmap',
    title,
    spec: top(title, [input.title, `${sweep.length} combinations; ${bestText}`], {
      data: { values },
      vconcat: variants.map((v) => ({
        title: variants.length > 1 || v !== '' ? { text: v || 'default settings', fontSize: 13 } : undefined,
        hconcat: [heat(v, 'tableFull'), heat(v, 'share')],
        resolve: { scale: { color: 'independent' } },
      })),
      resolve: { scale: { color: 'independent' } },
    }),
  };
}

function sweepOccupancySpec(sweep: SweepResult[], input: ReportInput): ChartSpec {
  const title = 'Sweep: occupancy per combination';
  const sorted = sweep.slice().sort((a, b) => a.tableBytes - b.tableBytes || a.vr_flow_entries - b.vr_flow_entries || a.vr_oflow_entries - b.vr_oflow_entries);
  const values: { t: number; combo: string; active: number; overflowUsed: number }[] = [];
  const names: string[] = [];
  for (const r of sorted) {
    if (r.timeline.length === 0) continue;
    const v = variantOf(r);
    const combo = `${r.vr_flow_entries} + ${r.vr_oflow_entries}${v ? ` (${v})` : ''}`;
    names.push(combo);
    const { rows, interval } = thinTimeline(r.timeline, reportInterval(r.timeline, input.interval), Math.ceil(MAX_POINTS / 4));
    for (const p of levels(rows, interval, (x) => ({ active: x.active, overflowUsed: x.overflowUsed }), { active: 0, overflowUsed: 0 })) values.push({ combo, ...p });
  }
  const line = (field: 'active' | 'overflowUsed', name: string): object => ({
    width: WIDTH - 260,
    height: 200,
    mark: { type: 'line', strokeWidth: 1.4 },
    encoding: {
      x: X_TIME,
      y: { field, type: 'quantitative', title: name },
      color: { field: 'combo', type: 'nominal', sort: names, title: 'N + O', scale: { scheme: names.length > 10 ? 'category20' : 'category10' }, legend: { orient: 'right', columns: 1 } },
    },
  });
  return {
    name: 'sweep-occupancy',
    title,
    spec: top(title, [input.title, 'active entries and overflow entries in use over capture time, one line per vr_flow_entries + vr_oflow_entries'], {
      data: { values },
      vconcat: [line('active', 'active entries'), line('overflowUsed', 'overflow entries in use')],
    }),
  };
}

/** Logger for vega-lite and vega that hands warnings (and errors, which vega also throws) to `sink`. */
function makeLogger(sink: (msg: string) => void): vega.LoggerInterface {
  let level = vega.Warn;
  const text = (args: readonly unknown[]): string => args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ');
  const l = {
    level(v?: number) {
      if (v === undefined) return level;
      level = v;
      return l;
    },
    error: (...args: readonly unknown[]) => (sink(text(args)), l),
    warn: (...args: readonly unknown[]) => (level >= vega.Warn && sink(text(args)), l),
    info: () => l,
    debug: () => l,
  };
  return l as unknown as vega.LoggerInterface;
}

/** Give each chart's element ids a prefix of its own: several SVGs share one HTML document. */
function scopeIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_m, id: string) => `id="${prefix}-${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_m, id: string) => `url(#${prefix}-${id})`)
    .replace(/href="#([^"]+)"/g, (_m, id: string) => `href="#${prefix}-${id}"`);
}

async function renderSpec(c: ChartSpec, onWarning: (msg: string) => void): Promise<Chart> {
  const logger = makeLogger((m) => onWarning(`${c.name}: ${m}`));
  const compiled = compile(c.spec, { logger }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logger, logLevel: vega.Warn });
  try {
    const svg = await view.toSVG();
    return { name: c.name, title: c.title, svg: scopeIds(svg, `vremu-${c.name}`) };
  } finally {
    view.finalize();
  }
}

/** The specs of the charts of `input` (vega-lite), in report order. @throws UserError for an empty timeline. */
export function chartSpecs(input: ReportInput): ChartSpec[] {
  if (input.timeline.length === 0)
    throw new UserError(`report "${input.title}": the timeline has no rows (the capture has no frames): there is nothing to chart`);
  const { rows, interval } = thinTimeline(input.timeline, reportInterval(input.timeline, input.interval));
  const specs = [occupancySpec(rows, interval, input), dropsSpec(rows, interval, input), flowsSpec(rows, interval, input), exportSpec(rows, interval, input)];
  if (input.sweep && input.sweep.length > 0) specs.push(sweepHeatmapSpec(input.sweep, input), sweepOccupancySpec(input.sweep, input));
  return specs;
}

/**
 * Render the charts of `input` to SVG: occupancy, drops, flows, export, and for a sweep sweep-heatmap and
 * sweep-occupancy. Asynchronous because vega's renderer is.
 * @throws UserError when the timeline is empty.
 */
export async function renderCharts(input: ReportInput, opts: RenderOptions = {}): Promise<Chart[]> {
  const specs = chartSpecs(input);
  const sink = opts.onWarning ?? (() => undefined);
  const out: Chart[] = [];
  for (const c of specs) out.push(await renderSpec(c, sink));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The HTML report and the bare SVGs.

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** One row of the summary table: [id, what, value, note]. */
type SummaryRow = [string, string, string, string];

/** The summary table's rows (the values the HTML shows, for the CLI and the tests too). */
export function summaryRows(input: ReportInput): SummaryRow[] {
  const interval = reportInterval(input.timeline, input.interval);
  const s = summarizeTimeline(input.timeline, interval);
  const { entries: n, oentries: o } = input.table;
  const rows: SummaryRow[] = [
    ['capture', 'capture', `${s.frames} frames over ${num(s.duration)} s`, `${input.timeline.length} intervals of ${num(interval, 3)} s`],
    ['table', 'flow table', `vr_flow_entries ${n}, vr_oflow_entries ${o}`, ''],
    ['table-memory', 'table memory', formatBytes(flowTableBytes(n, o)), `(${n} + ${o}) × ${FE_SIZE} B = ${flowTableBytes(n, o)} B`],
    ['peak-active', 'peak occupancy', `${s.peakActive} entries`, `${pct(s.peakActive, n + o)} of N + O, at ${num(s.peakActiveT)} s`],
    ['peak-overflow', 'peak overflow', `${s.peakOverflow} entries`, `${pct(s.peakOverflow, o)} of vr_oflow_entries, at ${num(s.peakOverflowT)} s`],
    ['table-full', 'Flow Table Full drops', String(s.tableFull), `${s.drops} frames dropped in all`],
    ['peak-held', 'peak held packets', String(s.peakHeld), ''],
    [
      'export',
      'export records/s',
      `${num(s.exportMeanPerS)} mean, ${num(s.exportPeakPerS)} peak`,
      `${input.exportRate !== undefined && input.exportRate > 0 ? `flow_export_rate ${input.exportRate}/s` : 'no flow_export_rate'}; ${s.sampledAway} flows sampled away`,
    ],
  ];
  if (input.sweep && input.sweep.length > 0) {
    const best = smallestTable(input.sweep, input.maxOverflow);
    const bound = input.maxOverflow !== undefined ? ` and at most ${(100 * input.maxOverflow).toFixed(1)} % overflow` : '';
    rows.push([
      'smallest-no-drop',
      'smallest table that drops nothing',
      best ? `${describeCombination(best)}` : 'none',
      best
        ? `${formatBytes(best.tableBytes)}; peak ${best.peakActive} active, ${best.peakOverflow} overflow (${pct(best.peakOverflow, best.vr_oflow_entries)}); of ${input.sweep.length} combinations${bound}`
        : `none of the ${input.sweep.length} combinations drops no frame as Flow Table Full${bound}: try larger vr_flow_entries / vr_oflow_entries`,
    ]);
  }
  return rows;
}

const CSS = `
body { font-family: sans-serif; color: #222; margin: 24px auto; max-width: 1240px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 6px; }
p.generated { color: #666; margin: 0 0 16px; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #eaf6e6; font-weight: 600; }
td.note { color: #555; }
figure { margin: 12px 0 24px; overflow-x: auto; }
figure svg { display: block; max-width: 100%; height: auto; }
`;

function sweepTable(input: ReportInput): string {
  const sweep = input.sweep ?? [];
  if (sweep.length === 0) return '';
  const best = smallestTable(sweep, input.maxOverflow);
  const sorted = sweep.slice().sort((a, b) => a.tableBytes - b.tableBytes || a.vr_flow_entries - b.vr_flow_entries || a.vr_oflow_entries - b.vr_oflow_entries);
  const head = ['vr_flow_entries', 'vr_oflow_entries', 'flow_cache_timeout', 'fat flow', 'peak active', 'peak overflow', 'overflow share', 'Flow Table Full', 'table memory', 'export/s mean', 'export/s peak'];
  const body = sorted
    .map((r) => {
      const cells = [
        String(r.vr_flow_entries), String(r.vr_oflow_entries), r.flow_cache_timeout > 0 ? `${r.flow_cache_timeout} s` : 'default', r.fatFlow.join(' ') || '–',
        String(r.peakActive), String(r.peakOverflow), pct(r.peakOverflow, r.vr_oflow_entries), String(r.tableFull), formatBytes(r.tableBytes),
        num(r.exportPerS), num(r.exportPeakPerS),
      ];
      return `<tr${r === best ? ' class="best"' : ''}>${cells.map((c, k) => `<td${k === 3 ? '' : ' class="num"'}>${esc(c)}</td>`).join('')}</tr>`;
    })
    .join('\n');
  return `<h2>Sweep</h2>\n<table id="sweep"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>\n<tbody>\n${body}\n</tbody></table>\n`;
}

/** The report as one self-contained HTML document (inline SVG and CSS, no script, no external URL). */
export async function reportHtml(input: ReportInput, opts: RenderOptions = {}): Promise<string> {
  const charts = await renderCharts(input, opts);
  const summary = summaryRows(input)
    .map(([id, what, value, note]) => `<tr id="summary-${id}"${id === 'smallest-no-drop' && value !== 'none' ? ' class="best"' : ''}><th>${esc(what)}</th><td>${esc(value)}</td><td class="note">${esc(note)}</td></tr>`)
    .join('\n');
  const figures = charts
    .map((c) => `<figure class="chart" id="chart-${c.name}" data-chart="${c.name}" aria-label="${esc(c.title)}">\n${c.svg}\n</figure>`)
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(input.title)} — vrouter-emu capacity report</title>
<style>${CSS}</style>
</head>
<body>
<h1>${esc(input.title)}</h1>
<p class="generated">vrouter-emu capacity report: the capture replayed through the R2.22 flow-table geometry.</p>
<table id="summary"><tbody>
${summary}
</tbody></table>
${sweepTable(input)}${figures}
</body>
</html>
`;
}

/** Write `text` to `file` atomically, its directory created. @throws UserError naming the option, the file and its directory. */
function writeAtomic(file: string, text: string, what: string): void {
  try {
    writeFileAtomic(file, text, { mkdir: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UserError(`${what}: cannot write ${file} in ${path.dirname(path.resolve(file))} (${err.code ?? err.message}): choose a directory you can write`);
  }
}

/**
 * Write the HTML report of `input` to `file` (replaced atomically).
 * @throws UserError when the timeline is empty or the file's directory cannot be written.
 */
export async function writeReport(file: string, input: ReportInput, opts: RenderOptions = {}): Promise<void> {
  const html = await reportHtml(input, opts);
  writeAtomic(file, html, '--report');
}

/**
 * Write each chart of `input` as DIR/NAME.svg (each replaced atomically; DIR is created).
 * @returns the files written.
 * @throws UserError when the timeline is empty or `dir` cannot be written.
 */
export async function writeSvgs(dir: string, input: ReportInput, opts: RenderOptions = {}): Promise<string[]> {
  const charts = await renderCharts(input, opts);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UserError(`--svg: cannot create the directory ${dir} (${err.code ?? err.message}): choose a directory you can write`);
  }
  const files: string[] = [];
  for (const c of charts) {
    const file = path.join(dir, `${c.name}.svg`);
    writeAtomic(file, `<?xml version="1.0" encoding="UTF-8"?>\n${c.svg}\n`, '--svg');
    files.push(file);
  }
  return files;
}
