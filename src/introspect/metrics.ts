/**
 * `/metrics`: the node in the Prometheus text format (prom-client, a registry of its own). Every value
 * is read at scrape time by the metrics' collect() callbacks from what the tools read: the flow table's
 * info block (vr_flow_table_info: active entries, overflow in use, Created/Added/Processed, hold
 * counts), the drop counters (`dropstats`, one `reason` label per dropstats line), the vif counters
 * (`vif --list`), the agent's flow counters (`agent stats`) and the export sampler and its collectors.
 *
 * A scrape costs the same at 16 flows and at 512K: no metric walks the flow table (the active count is
 * the table's own counter, kept by the datapath as it adds and frees hash entries). It runs on the
 * agent's thread and only reads shared memory, so the datapath thread never waits on it.
 * @module
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Instance } from '../cli/tools';
import { DROPSTATS_LINES } from '../cli/dropstats';
import { FTI_ACTION_COUNT, FTI_ACTIVE, FTI_ACTIVE_PEAK, FTI_ADDED, FTI_OFLOW_PEAK, FTI_OFLOW_USED, flowCreatedCount, flowHoldEntries } from '../dp/flow-table';
import { VIFS_LEN, VIFS_RX_BYTES, VIFS_RX_ERRORS, VIFS_RX_PACKETS, VIFS_TX_BYTES, VIFS_TX_ERRORS, VIFS_TX_PACKETS } from '../dp/interface';
import type { Handler } from './server';

/** The metrics' name prefix. */
export const METRIC_PREFIX = 'vrouter_';

/** The dropstats labels in print order with their VP_DROP codes (the `reason` label values). */
export const DROP_REASONS: readonly [string, number][] = DROPSTATS_LINES.filter((l): l is [string, number] => l !== null);

/** A registry with every metric of the node, each read from `inst` when scraped. */
export function metricsRegistry(inst: Instance): Registry {
  const reg = new Registry();
  const info = inst.table.info;
  const drops = new Float64Array(inst.shared.dropsSab);
  const vifStats = new Float64Array(inst.shared.vifStatsSab);
  const registers = [reg];

  /** A gauge without labels whose value is `f()` at scrape time. */
  const gauge = (name: string, help: string, f: () => number): void => {
    new Gauge({ name: METRIC_PREFIX + name, help, registers, collect() { this.set(f()); } });
  };
  /** A counter without labels whose value is `f()` (a cumulative count kept elsewhere). */
  const counter = (name: string, help: string, f: () => number): void => {
    new Counter({ name: METRIC_PREFIX + name, help, registers, collect() { setCounter(this, f()); } });
  };

  // The flow table (vr_flow_table_info, as `flow -l`'s header and `agent stats` show it).
  gauge('flow_entries', 'Flow table entries in use (hash entries holding a flow, main and overflow).', () => info[FTI_ACTIVE]);
  gauge('flow_entries_peak', 'Highest number of flow table entries in use since start.', () => info[FTI_ACTIVE_PEAK]);
  gauge('flow_overflow_entries_used', 'Overflow flow entries in use (flow -l: "Used Overflow entries").', () => info[FTI_OFLOW_USED]);
  gauge('flow_overflow_entries_peak', 'Highest number of overflow flow entries in use since start.', () => info[FTI_OFLOW_PEAK]);
  new Gauge({
    name: METRIC_PREFIX + 'flow_table_capacity_entries', help: 'Flow table size: main (vr_flow_entries) and overflow (vr_oflow_entries) entries.',
    labelNames: ['table'], registers,
    collect() {
      this.set({ table: 'main' }, inst.table.entries);
      this.set({ table: 'overflow' }, inst.table.oentries);
    },
  });
  gauge('flow_hold_entries', 'Flow entries in HOLD, waiting for the agent (Created - Processed).', () => flowHoldEntries(inst.table));
  counter('flows_created_total', 'Flow entries the datapath created in HOLD on a miss (flow -l: "Created").', () => flowCreatedCount(inst.table));
  counter('flows_added_total', 'Flow entries the agent added (flow -l: "Added").', () => info[FTI_ADDED]);
  counter('flows_processed_total', 'Flow entries that left HOLD (flow -l: "Processed").', () => info[FTI_ACTION_COUNT]);

  // The agent (`agent stats`).
  const st = () => inst.agent()?.stats;
  gauge('agent_flows', 'Flows the agent holds (agent stats: "flows active").', () => inst.agent()?.flowCount ?? 0);
  gauge('agent_aging_enabled', '1 when the agent ages flows (agent aging on, off).', () => (inst.agent()?.agingOn ? 1 : 0));
  counter('flows_setup_total', 'Flow entries the agent set up (agent stats: "set up").', () => st()?.created ?? 0);
  counter('flows_deleted_total', 'Flow entries the agent deleted.', () => st()?.deleted ?? 0);
  counter('flows_aged_total', 'Flows the agent aged out (agent stats: "aged").', () => st()?.aged ?? 0);
  counter('flows_evicted_total', 'Flows the vRouter evicted (closed TCP sessions; agent stats: "evicted by the vrouter").', () => st()?.evicted ?? 0);
  counter('flows_short_total', 'Short flows (agent stats: "short").', () => st()?.short ?? 0);
  counter('flow_set_errors_total', 'FLOW_SET requests the datapath refused (agent stats: "FLOW_SET errors").', () => st()?.errors ?? 0);

  // Drops: one series per dropstats line, always present (0 included), the label text as printed.
  new Counter({
    name: METRIC_PREFIX + 'drops_total', help: 'Packets dropped, by dropstats reason (the dropstats label text).',
    labelNames: ['reason'], registers,
    collect() {
      this.reset();
      for (const [label, code] of DROP_REASONS) this.inc({ reason: label }, drops[code] ?? 0);
    },
  });

  // Per-vif counters (`vif --list`).
  const vifMetric = (what: string, rx: number, tx: number): void => {
    new Counter({
      name: `${METRIC_PREFIX}vif_${what}_total`, help: `Interface ${what} by direction (vif --list: RX/TX ${what}).`,
      labelNames: ['vif', 'name', 'direction'], registers,
      collect() {
        this.reset();
        for (const v of inst.node.vifs) {
          const s = v.idx * VIFS_LEN;
          const base = { vif: `0/${v.idx}`, name: v.os };
          this.inc({ ...base, direction: 'rx' }, vifStats[s + rx]);
          this.inc({ ...base, direction: 'tx' }, vifStats[s + tx]);
        }
      },
    });
  };
  vifMetric('packets', VIFS_RX_PACKETS, VIFS_TX_PACKETS);
  vifMetric('bytes', VIFS_RX_BYTES, VIFS_TX_BYTES);
  vifMetric('errors', VIFS_RX_ERRORS, VIFS_TX_ERRORS);

  // Flow export: the sampler, then one series per collector.
  const sm = () => inst.exporting()?.fx.sampler;
  counter('export_records_total', 'Flow records exported (sampled in).', () => sm()?.stats.exported ?? 0);
  counter('export_sampled_away_total', 'Flow samples not exported: below the sampling threshold and not picked.', () => sm()?.stats.sampledAway ?? 0);
  counter('export_disabled_total', 'Flow samples not exported: flow_export_rate 0 or disable_flow_collection.', () => sm()?.stats.disabled ?? 0);
  gauge('export_threshold_bytes', 'Flow export sampling threshold, bytes.', () => sm()?.threshold ?? 0);
  gauge('export_rate_configured', 'Flow export rate configured (flow_export_rate), records per second.', () => sm()?.configuredRate ?? 0);
  gauge('export_rate_measured', 'Flow export rate measured, records per second.', () => sm()?.measuredRate ?? 0);
  const perSink = (name: string, help: string, type: 'gauge' | 'counter', f: (s: ReturnType<NonNullable<ReturnType<Instance['exporting']>>['sinks'][number]['stats']>) => number): void => {
    const collect = function (this: Gauge | Counter): void {
      this.reset();
      for (const k of inst.exporting()?.sinks ?? []) {
        const v = f(k.stats());
        if (this instanceof Gauge) this.set({ collector: k.name }, v);
        else this.inc({ collector: k.name }, v);
      }
    };
    const o = { name: METRIC_PREFIX + name, help, labelNames: ['collector'], registers, collect };
    if (type === 'gauge') new Gauge(o);
    else new Counter(o);
  };
  perSink('collector_up', '1 when the connection to the collector is up (IPFIX over UDP: once its address resolved).', 'gauge', (s) => (s.connected ? 1 : 0));
  perSink('collector_records_sent_total', 'Flow records sent to the collector (first sends).', 'counter', (s) => s.sent);
  perSink('collector_records_acked_total', 'Flow records the collector acknowledged as stored.', 'counter', (s) => s.acked);
  perSink('collector_records_dropped_total', 'Flow records dropped for this collector: its queue was full.', 'counter', (s) => s.dropped);
  perSink('collector_records_queued', 'Flow records waiting for this collector (queued or unacknowledged).', 'gauge', (s) => s.queued);
  perSink('collector_reconnects_total', 'Connections to the collector made after the first.', 'counter', (s) => s.reconnects);
  gauge('scrape_duration_seconds', 'Time the previous /metrics scrape took to collect and format, seconds.', () => lastScrapeSeconds.get(reg) ?? 0);
  return reg;
}

/** The previous scrape's duration per registry (set by metricsRoutes). */
const lastScrapeSeconds = new WeakMap<Registry, number>();

/** Set a counter to a cumulative value kept elsewhere (prom-client counters only count up from 0). */
function setCounter(c: Counter, v: number): void {
  c.reset();
  c.inc(v > 0 ? v : 0);
}

/** `/metrics` (GET, HEAD). */
export function metricsRoutes(inst: Instance): Handler[] {
  const reg = metricsRegistry(inst);
  return [
    async (req, url, res) => {
      if (url.pathname !== '/metrics') return false;
      const t0 = process.hrtime();
      const body = await reg.metrics();
      const dt = process.hrtime(t0);
      lastScrapeSeconds.set(reg, dt[0] + dt[1] / 1e9);
      res.writeHead(200, { 'content-type': reg.contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    },
  ];
}
