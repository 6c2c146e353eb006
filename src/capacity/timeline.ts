/**
 * The replay's timeline (`replay --timeline FILE --interval S`): one row per interval of capture time,
 * made from counters the datapath and the agent keep anyway — a snapshot at each interval's end and the
 * difference from the previous one. Nothing is added to the per-packet path: the recorder is asked once
 * per frame whether the capture clock has passed the interval's end (one comparison).
 *
 * Intervals without frames (a quiet gap in the capture) are rows too, so the rows tile the capture.
 * Their counts add up to the replay's totals (tests check it).
 * @module
 */
import { writeFileAtomic } from '../lib/atomic-file';
import { FTI_ACTIVE, FTI_ADDED, FTI_OFLOW_USED, flowCreatedCount } from '../dp/flow-table';
import { RES_HELD, Router } from '../dp/router';
import { DROPSTATS_LINES } from '../cli/dropstats';
import { UserError } from '../errors';
import { Parsed, opt } from '../cli/args';
import type { TimelineRow } from './types';

/** What the recorder reads from the agent and the export sampler at each interval's end. */
export interface TimelineSources {
  agent(): { aged: number; evicted: number } | undefined;
  export(): { exported: number; sampledAway: number; threshold: number } | undefined;
}

export class TimelineRecorder {
  readonly rows: TimelineRow[] = [];
  /** Capture time (ms) of the current interval's start and end. */
  private start: number;
  private end: number;
  private frames = 0;
  // The previous interval end's counters.
  private created = 0;
  private held = 0;
  private aged = 0;
  private evicted = 0;
  private exported = 0;
  private sampledAway = 0;
  private readonly drops: Float64Array;
  /** The first frame's capture time: rows' `t` count from there. */
  private readonly origin: number;

  constructor(private readonly r: Router, private readonly src: TimelineSources, private readonly intervalMs: number, firstTsMs: number) {
    this.start = firstTsMs;
    this.end = firstTsMs + intervalMs;
    this.drops = new Float64Array(r.drops.length);
    this.origin = firstTsMs;
  }

  /** Before the frame at capture time `ts` (ms): close the intervals it has passed. */
  frame(ts: number): void {
    while (ts >= this.end) this.close();
    this.frames++;
  }

  /** After the last frame: close the interval it fell in. */
  finish(): void {
    if (this.frames > 0 || this.rows.length === 0) this.close();
  }

  private close(): void {
    const { r } = this;
    const info = r.ft.info;
    const created = flowCreatedCount(r.ft) + info[FTI_ADDED];
    const a = this.src.agent();
    const x = this.src.export();
    const drops: Record<string, number> = {};
    for (const l of DROPSTATS_LINES) {
      if (!l) continue;
      const d = r.drops[l[1]] - this.drops[l[1]];
      if (d !== 0) drops[l[0]] = d;
    }
    this.drops.set(r.drops);
    const secs = this.intervalMs / 1000;
    this.rows.push({
      t: (this.start - this.origin) / 1000,
      frames: this.frames,
      active: info[FTI_ACTIVE],
      overflowUsed: info[FTI_OFLOW_USED],
      newFlowsPerS: (created - this.created) / secs,
      held: r.results[RES_HELD] - this.held,
      drops,
      aged: (a?.aged ?? 0) - this.aged,
      evicted: (a?.evicted ?? 0) - this.evicted,
      exportPerS: ((x?.exported ?? 0) - this.exported) / secs,
      exportThreshold: x?.threshold ?? 0,
      sampledAway: (x?.sampledAway ?? 0) - this.sampledAway,
    });
    this.created = created;
    this.held = r.results[RES_HELD];
    this.aged = a?.aged ?? 0;
    this.evicted = a?.evicted ?? 0;
    this.exported = x?.exported ?? 0;
    this.sampledAway = x?.sampledAway ?? 0;
    this.frames = 0;
    this.start = this.end;
    this.end += this.intervalMs;
  }
}

/** The drop labels any row has, in `dropstats` order (the CSV's columns). */
function dropColumns(rows: TimelineRow[]): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const k of Object.keys(row.drops)) seen.add(k);
  return DROPSTATS_LINES.filter((l): l is [string, number] => l !== null && seen.has(l[0])).map((l) => l[0]);
}

/** The rows as CSV: the fixed columns, then one `drop:LABEL` column per label that occurs. */
export function timelineCsv(rows: TimelineRow[]): string {
  const drops = dropColumns(rows);
  const head = ['t', 'frames', 'active', 'overflow_used', 'new_flows_per_s', 'held', 'aged', 'evicted', 'export_per_s', 'export_threshold', 'sampled_away', ...drops.map((d) => `drop:${d}`)];
  const csv = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [head.map(csv).join(',')];
  for (const x of rows) {
    lines.push([x.t, x.frames, x.active, x.overflowUsed, x.newFlowsPerS, x.held, x.aged, x.evicted, x.exportPerS, x.exportThreshold, x.sampledAway, ...drops.map((d) => x.drops[d] ?? 0)].join(','));
  }
  return lines.join('\n') + '\n';
}

/** Write the rows to FILE: JSON when it ends in .json, else CSV; atomically. @throws UserError naming the file. */
export function writeTimeline(file: string, rows: TimelineRow[]): void {
  const text = file.endsWith('.json') ? JSON.stringify(rows, null, 1) + '\n' : timelineCsv(rows);
  try {
    writeFileAtomic(file, text);
  } catch (e) {
    throw new UserError(`--timeline ${file}: cannot write it (${(e as Error).message}); give a file in a writable directory`);
  }
}

/** `--interval S`: seconds of capture time per timeline row (default 1). @throws UserError out of 0.001..86400. */
export function intervalOption(p: Parsed): number {
  const s = opt(p, '--interval');
  const v = s === undefined ? 1 : Number(s);
  if (!(v >= 0.001 && v <= 86400)) throw new UserError(`--interval ${s}: expected seconds of capture time per timeline row, 0.001 to 86400`);
  return v;
}
