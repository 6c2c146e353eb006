/**
 * `vrouter-emu replay CAPTURE`: push a capture through the flow engine and report what the table did:
 * frames, flows created, peak and final occupancy, overflow use, non-zero drop statistics, then the
 * `flow -l` listing of the final table (or all of it as one JSON object with --json).
 * @module
 */
import { loadReport } from '../capacity/load-report';
import { FTI_ACTIVE, FTI_ACTIVE_PEAK, FTI_ADDED, FTI_ACTION_COUNT, FTI_OFLOW_PEAK, FTI_OFLOW_USED, FlowTable, feAction, feBytes, feDropReason, feFlags, feKeyWord, fePackets, feProto, feRflow, feTcpFlags, feUdpSport, feVrf } from '../dp/flow-table';
import { VP_DROP_FLOW_TABLE_FULL, VR_FLOW_DR_NAMES, VR_FLOW_FLAG_ACTIVE, VR_FLOW_FLAG_EVICTED, flowActionLetter } from '../dp/defs';
import { RES_DROPPED, RES_FORWARDED, RES_HELD, RES_NO_FLOW, RES_TRAPPED, Router } from '../dp/router';
import { keyDport, keyIpString, keySport } from '../dp/proto-ip';
import { flowCreatedCount } from '../dp/flow-table';
import { loadModuleParams } from '../params/module-params';
import { captureValidate } from '../io/pcap';
import { REPLAY_NH_DEFAULT, replayCapture } from './replay-run';
import { Parsed, opt, optInt, optOnOff } from './args';
import { DROPSTATS_LINES, dropLabel, dropstatsLine } from './dropstats';
import { Out, flowList, tcpLetters } from './flow-list';
import { StdoutWriter } from './out';
import { defaultParamsFile } from '../lib/package-root';
import { AGENT_OPTS, AGENT_USAGE, agentFiles, agingFor } from '../capacity/agent-options';
import { intervalOption, writeTimeline } from '../capacity/timeline';
import { UserError } from '../errors';

export const REPLAY_USAGE =
  `vrouter-emu replay CAPTURE [--params FILE] [--param name=value]... ${AGENT_USAGE} [--agent-latency MS] [--datapath-eviction on|off] [--nh ID] [--timeline FILE.csv|FILE.json] [--interval S] [--report FILE.html] [--svg DIR] [--keep-going] [--json]`;

export const REPLAY_OPTS = {
  '--params': { value: true },
  '--param': { value: true, repeat: true },
  ...AGENT_OPTS,
  '--keep-going': {},
  '--timeline': { value: true },
  '--interval': { value: true },
  '--report': { value: true },
  '--svg': { value: true },
  '--agent-latency': { value: true },
  '--datapath-eviction': { value: true },
  '--nh': { value: true },
  '--seed': { value: true },
  '--json': {},
  '--show-evicted': {},
};

function flowJson(t: FlowTable, i: number): Record<string, unknown> {
  const k0 = feKeyWord(t, i, 0);
  const dr = feDropReason(t, i);
  return {
    index: i,
    rindex: feRflow(t, i),
    sip: keyIpString(feKeyWord(t, i, 1)),
    sport: keySport(k0),
    dip: keyIpString(feKeyWord(t, i, 2)),
    dport: keyDport(k0),
    proto: feProto(t, i),
    vrf: feVrf(t, i),
    nh: feKeyWord(t, i, 3),
    action: flowActionLetter(feAction(t, i)),
    flags: feFlags(t, i),
    tcp: tcpLetters(feTcpFlags(t, i)),
    packets: fePackets(t, i),
    bytes: feBytes(t, i),
    dropReason: feAction(t, i) === 0 ? VR_FLOW_DR_NAMES[dr] ?? dr : null,
    udpSrcPort: feUdpSport(t, i),
  };
}

function frameLine(n: number, r: Router, before: Float64Array): string {
  const p = r.pkt;
  const d = (k: number): boolean => r.results[k] > before[k];
  let verdict = 'not subject to flows';
  if (d(RES_DROPPED)) verdict = `dropped (${dropLabel(r.lastDrop)})`;
  else if (d(RES_HELD)) verdict = `held in flow ${p.flowIdx}${d(RES_TRAPPED) ? ', trapped' : ''}`;
  else if (d(RES_FORWARDED)) verdict = `forwarded by flow ${p.flowIdx}`;
  const who = p.flowIdx >= 0 || d(RES_DROPPED) && p.k1 !== 0
    ? ` ${keyIpString(p.k1)}:${keySport(p.k0)} > ${keyIpString(p.k2)}:${keyDport(p.k0)} proto ${p.kproto}`
    : '';
  return `frame ${n}${who}: ${verdict}\n`;
}

export async function cmdReplay(p: Parsed): Promise<number> {
  const file = p.positional[0];
  if (file === undefined || p.positional.length > 1) {
    process.stderr.write(`usage: ${REPLAY_USAGE}\n`);
    return 2;
  }
  const warnings: string[] = [];
  const params = loadModuleParams({ file: opt(p, '--params'), overrides: p.opts.get('--param') }, defaultParamsFile(), {
    warn: (m) => warnings.push(m),
  });
  for (const w of warnings) process.stderr.write(`vrouter-emu: ${w}\n`);
  const json = p.flags.has('--json');
  const files = agentFiles(p);
  const timelineFile = opt(p, '--timeline');
  const intervalS = intervalOption(p);
  const reportFile = opt(p, '--report');
  const svgDir = opt(p, '--svg');
  const rows = timelineFile !== undefined || reportFile !== undefined || svgDir !== undefined;
  if (opt(p, '--interval') !== undefined && !rows) throw new UserError('--interval is the timeline\'s: give --timeline FILE, --report FILE or --svg DIR too');
  // Validate the whole capture first, so that a truncated or foreign file gets one line and no output.
  // (--keep-going reads as far as it can instead: the results so far, then the problem.)
  const keepGoing = p.flags.has('--keep-going');
  const total = keepGoing ? Infinity : captureValidate(file);
  const out = new StdoutWriter();
  const dbg = params.vrouter_dbg !== 0 && !json;
  const tty = process.stderr.isTTY === true && total > 200000;
  let lastDraw = 0;
  const run = replayCapture(file, {
    params,
    aging: agingFor(params, files),
    fatFlow: files.fatFlow,
    exportRate: files.exportRate,
    intervalMs: rows ? intervalS * 1000 : undefined,
    keepGoing,
    agentLatencyMs: optInt(p, '--agent-latency', 0),
    eviction: optOnOff(p, '--datapath-eviction', true),
    nh: optInt(p, '--nh', REPLAY_NH_DEFAULT),
    seed: optInt(p, '--seed', 1),
    onFrame: dbg ? (n, r, before) => out.write(frameLine(n, r, before)) : undefined,
    onProgress: tty
      ? (pos, size) => {
          const now = Date.now();
          if (now - lastDraw < 200) return;
          lastDraw = now;
          const frac = size > 0 ? pos / size : 0;
          const w = 30;
          const fill = Math.round(frac * w);
          process.stderr.write(`\r[${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ${file}`);
        }
      : undefined,
  });
  if (tty) process.stderr.write('\r' + ' '.repeat(50 + file.length) + '\r');
  if (timelineFile && run.timeline) writeTimeline(timelineFile, run.timeline.rows);
  if ((reportFile || svgDir) && run.timeline) {
    const { writeReport, writeSvgs } = loadReport();
    const input = { timeline: run.timeline.rows, table: { entries: params.vr_flow_entries, oentries: params.vr_oflow_entries }, exportRate: files.exportRate, title: `vrouter-emu replay: ${file}`, interval: intervalS };
    if (reportFile) await writeReport(reportFile, input);
    if (svgDir) await writeSvgs(svgDir, input);
  }
  const secs = (run.lastTsMs - run.firstTsMs) / 1000;
  const r = run.r;
  const xs = run.exporter?.sampler.stats;
  const exportLine = run.exporter && xs
    ? `  flow export (flow_export_rate ${files.exportRate}): ${xs.exported} records, ${(secs > 0 ? xs.exported / secs : 0).toFixed(1)}/s over the capture; ${xs.sampledAway} samples left out; threshold ${run.exporter.sampler.threshold} bytes at the end\n`
    : '  flow export: off (flow_export_rate 0 or disable_flow_collection)\n';
  const t = r.ft;
  const info = t.info;
  const created = flowCreatedCount(t);
  const nonZero: [string, number][] = [];
  for (const l of DROPSTATS_LINES) {
    if (l && (r.drops[l[1]] !== 0 || l[1] === VP_DROP_FLOW_TABLE_FULL)) nonZero.push([l[0], r.drops[l[1]]]);
  }
  if (json) {
    const flows: Record<string, unknown>[] = [];
    for (let i = 0; i < t.total; i++) {
      const f = feFlags(t, i);
      if (f & VR_FLOW_FLAG_ACTIVE && !(f & VR_FLOW_FLAG_EVICTED)) flows.push(flowJson(t, i));
    }
    out.write(JSON.stringify({
      capture: file,
      frames: run.frames,
      captureSeconds: secs,
      results: {
        forwarded: r.results[RES_FORWARDED], held: r.results[RES_HELD], dropped: r.results[RES_DROPPED],
        notSubjectToFlows: r.results[RES_NO_FLOW], trapped: r.results[RES_TRAPPED],
      },
      params,
      table: {
        entries: t.entries, overflowEntries: t.oentries, flowsCreated: created + info[FTI_ADDED], created,
        added: info[FTI_ADDED], processed: info[FTI_ACTION_COUNT], activePeak: info[FTI_ACTIVE_PEAK],
        activeFinal: info[FTI_ACTIVE], overflowPeak: info[FTI_OFLOW_PEAK], overflowFinal: info[FTI_OFLOW_USED],
      },
      agent: run.agent.stats,
      export: xs ? { rate: files.exportRate, exported: xs.exported, sampledAway: xs.sampledAway, threshold: run.exporter?.sampler.threshold } : null,
      fatFlow: files.fatFlowText,
      dropstats: Object.fromEntries(nonZero),
      flows,
    }) + '\n');
    out.flush();
    return replayStatus(run.problem);
  }
  const w: Out = out.write;
  w(`Replay of ${file}: ${run.frames} frames over ${secs.toFixed(3)} s of capture time\n`);
  w(`  forwarded ${r.results[RES_FORWARDED]}, dropped ${r.results[RES_DROPPED]}, not subject to flows ${r.results[RES_NO_FLOW]}; ${r.results[RES_HELD]} waited in a hold queue\n`);
  w(`Flow table: ${t.entries} entries + ${t.oentries} overflow (vr_flow_entries=${params.vr_flow_entries}, vr_oflow_entries=${params.vr_oflow_entries})\n`);
  w(`  flows created ${created + info[FTI_ADDED]} (Created ${created} by the datapath on a miss, Added ${info[FTI_ADDED]} by the agent)\n`);
  w(`  active entries: peak ${info[FTI_ACTIVE_PEAK]}, final ${info[FTI_ACTIVE]}\n`);
  w(`  overflow entries in use: peak ${info[FTI_OFLOW_PEAK]}, final ${info[FTI_OFLOW_USED]}\n`);
  const a = run.agent.stats;
  w(`  agent: ${a.created} flows set up, ${a.aged} aged, ${a.evicted} evicted by the datapath, ${a.short} short${files.fatFlow.length ? `; fat flow ${files.fatFlowText.join(', ')}` : ''}\n`);
  w(exportLine);
  if (timelineFile && run.timeline) w(`  timeline: ${run.timeline.rows.length} rows of ${intervalS} s in ${timelineFile}\n`);
  w('\nDrop statistics (non-zero counters; Flow Table Full always):\n');
  for (const [label, v] of nonZero) w(dropstatsLine(label, v));
  w('\n');
  flowList(t, w, { showEvicted: p.flags.has('--show-evicted') });
  out.flush();
  return replayStatus(run.problem);
}

/** --keep-going: the results printed are those before the corrupt block; say where it was, exit 2. */
function replayStatus(problem: string | undefined): number {
  if (problem === undefined) return 0;
  process.stderr.write(`vrouter-emu: ${problem}; the results above are those of the frames before it (--keep-going)\n`);
  return 2;
}
