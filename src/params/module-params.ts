/**
 * The vrouter kernel module's load-time parameters (linux/vrouter_mod.c at R2.22; reference §1.1),
 * read from files in modprobe.d syntax (`options vrouter vr_flow_entries=524288 vr_oflow_entries=8192`)
 * and from `--param name=value` overrides, validated into one typed object.
 *
 * Syntax handled as modprobe does: `#` comments, blank lines, `\` line continuation, several
 * `options vrouter` lines merged with the later value winning, lines for other modules and other
 * commands (alias, blacklist, install…) ignored, `-` and `_` equal in parameter names, values parsed
 * like the kernel's kstrtouint(…, 0): decimal, `0x` hex, leading-`0` octal.
 * @module
 */
import * as os from 'os';
import { UserError } from '../errors';
import { oneLine, readInputFile } from '../lib/input';

export interface ModuleParams {
  /** Main flow hash table entries, after rounding up to a multiple of 4. */
  vr_flow_entries: number;
  /** Overflow flow entries (0 = none: a full bucket means a full table). */
  vr_oflow_entries: number;
  vr_bridge_entries: number;
  vr_bridge_oentries: number;
  vr_mpls_labels: number;
  vr_nexthops: number;
  /** VRF tables, ≤ 65536 (VR_MAX_VRFS). */
  vr_vrfs: number;
  /** 1 = dump packets (debug). */
  vrouter_dbg: number;
  /** Linux bridge mode on ≤ 2.6.32 (Xen) kernels; accepted, no effect in the emulator. */
  vr_use_linux_br: number;
}

/** R2.22 defaults (VR_DEF_FLOW_ENTRIES, VR_DEF_OFLOW_ENTRIES at release, VR_DEF_BRIDGE_*, VR_DEF_LABELS, …). */
export const MODULE_PARAM_DEFAULTS: Readonly<ModuleParams> = Object.freeze({
  vr_flow_entries: 524288,
  vr_oflow_entries: 8192,
  vr_bridge_entries: 262144,
  vr_bridge_oentries: 4096,
  vr_mpls_labels: 5120,
  vr_nexthops: 65536,
  vr_vrfs: 4096,
  vrouter_dbg: 0,
  vr_use_linux_br: 0,
});

export const MODULE_PARAM_NAMES = Object.keys(MODULE_PARAM_DEFAULTS) as (keyof ModuleParams)[];

/** VR_MAX_VRFS. */
export const VR_MAX_VRFS = 65536;
const UINT_MAX = 0xffffffff;
/**
 * The emulator's largest flow table: one SharedArrayBuffer, viewed by typed arrays that stop below
 * 4 GiB, at 128 bytes per entry (the kernel's vmalloc'ed table has no such bound).
 */
export const MAX_FLOW_TABLE_ENTRIES = Math.floor((2 ** 32 - 1) / 128); // 33 554 431

/** Where a value came from, for error lines. */
interface Origin {
  where: string; // "file:line" or "--param"
}

/** Raw name=value assignments in the order they were read. */
export interface ParamAssignment {
  name: string;
  value: string;
  origin: Origin;
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  const d: number[] = [];
  for (let j = 0; j <= b.length; j++) d[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}

function nearestName(name: string): string {
  let best = MODULE_PARAM_NAMES[0] as string;
  let bestD = Infinity;
  for (const n of MODULE_PARAM_NAMES) {
    const dd = editDistance(name.toLowerCase(), n);
    if (dd < bestD) {
      bestD = dd;
      best = n;
    }
  }
  return best;
}

/**
 * Read the `options vrouter …` assignments of a modprobe.d-style file.
 * @throws UserError for a missing or unreadable file, or an option that is not name=value.
 */
export function readParamFile(file: string): ParamAssignment[] {
  // Bounded: a modprobe.d file is a few lines; a wrong path (/dev/zero, a capture) is not read whole.
  const text = readInputFile(
    file,
    (problem, enoent) => (enoent
      ? `${file}: no such module-parameter file; give an existing one with --params FILE (module-params/default.conf has the R2.22 defaults)`
      : `${file}: ${problem.replace(/^cannot read it/, 'cannot read the module-parameter file')}`),
    MAX_PARAM_FILE,
  );
  return parseParamText(text, file);
}

/** The largest module-parameter file read. */
export const MAX_PARAM_FILE = 1 << 20;

/** Parse modprobe.d text; `file` names it in errors. */
export function parseParamText(text: string, file: string): ParamAssignment[] {
  const out: ParamAssignment[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const first = n + 1;
    // Join `\` continuations by collecting the pieces: testing the growing line again on every
    // piece made a file of many continuation lines quadratic (minutes for a few hundred kilobytes).
    let piece = lines[n];
    const pieces: string[] = [];
    while (/\\\s*$/.test(piece) && n + 1 < lines.length) {
      pieces.push(piece.replace(/\\\s*$/, ' '));
      piece = lines[++n];
    }
    pieces.push(piece);
    let line = pieces.join('');
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    const words = line.trim().split(/\s+/).filter((w) => w.length > 0);
    if (words.length < 2 || words[0] !== 'options') continue;
    if (words[1].replace(/-/g, '_') !== 'vrouter') continue;
    for (const w of words.slice(2)) {
      const eq = w.indexOf('=');
      const where = `${file}:${first}`;
      if (eq <= 0) {
        throw new UserError(`${where}: '${oneLine(w)}' is not name=value; write it as e.g. vr_flow_entries=524288`);
      }
      out.push({ name: w.slice(0, eq), value: w.slice(eq + 1).replace(/^"(.*)"$/, '$1'), origin: { where } });
    }
  }
  return out;
}

/**
 * Parse a `--param name=value` argument.
 * @throws UserError when it is not name=value.
 */
export function parseParamArg(arg: string): ParamAssignment {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new UserError(`--param ${oneLine(arg)}: expected name=value, e.g. --param vr_flow_entries=1024`);
  return { name: arg.slice(0, eq), value: arg.slice(eq + 1), origin: { where: `--param ${oneLine(arg)}` } };
}

/** kstrtouint(s, 0): decimal, 0x hex, leading-0 octal, optional '+'. NaN when not a u32. */
function kstrtouint(s: string): number {
  const m = /^\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return NaN;
  const t = m[1];
  let v: number;
  if (/^0[xX]/.test(t)) v = parseInt(t.slice(2), 16);
  else if (t.length > 1 && t[0] === '0') v = parseInt(t.slice(1), 8);
  else v = parseInt(t, 10);
  return v;
}

export interface ResolveOptions {
  /** Bytes the host can give the flow table (default: total memory). */
  memoryLimit?: number;
  /** Called for non-fatal notes (rounding). */
  warn?: (msg: string) => void;
}

/**
 * Apply assignments over the defaults and validate (vrouter_init's checks): unknown names, values that
 * are not non-negative integers, vr_vrfs above 65536, a flow table too large to allocate.
 * @throws UserError naming the file, line and parameter.
 */
export function resolveParams(assignments: ParamAssignment[], opts: ResolveOptions = {}): ModuleParams {
  const p: ModuleParams = { ...MODULE_PARAM_DEFAULTS };
  const origin: Partial<Record<keyof ModuleParams, string>> = {};
  for (const a of assignments) {
    const name = a.name.replace(/-/g, '_') as keyof ModuleParams;
    if (!(name in MODULE_PARAM_DEFAULTS)) {
      throw new UserError(`${a.origin.where}: unknown vrouter module parameter '${oneLine(a.name)}' (did you mean ${nearestName(a.name)}?)`);
    }
    const v = kstrtouint(a.value.trim());
    if (!Number.isFinite(v)) {
      throw new UserError(`${a.origin.where}: ${name}=${oneLine(a.value)} is not a non-negative integer; give a number such as ${MODULE_PARAM_DEFAULTS[name]}`);
    }
    if (v > UINT_MAX) {
      throw new UserError(`${a.origin.where}: ${name}=${oneLine(a.value)} is larger than an unsigned int (${UINT_MAX})`);
    }
    p[name] = v;
    origin[name] = a.origin.where;
  }
  const where = (n: keyof ModuleParams): string => origin[n] ?? 'default';

  if (p.vr_flow_entries === 0) {
    throw new UserError(`${where('vr_flow_entries')}: vr_flow_entries=0 leaves no flow table; use at least 4 (one bucket)`);
  }
  if (p.vr_flow_entries % 4 !== 0) {
    const rounded = p.vr_flow_entries + (4 - (p.vr_flow_entries % 4));
    opts.warn?.(`${where('vr_flow_entries')}: vr_flow_entries=${p.vr_flow_entries} rounded up to ${rounded} (a multiple of the 4-entry bucket)`);
    p.vr_flow_entries = rounded;
  }
  if (p.vr_vrfs > VR_MAX_VRFS) {
    throw new UserError(`${where('vr_vrfs')}: vr_vrfs=${p.vr_vrfs} exceeds the module's maximum of ${VR_MAX_VRFS} (VR_MAX_VRFS); the module refuses to load (EINVAL)`);
  }
  if (p.vr_vrfs === 0) {
    throw new UserError(`${where('vr_vrfs')}: vr_vrfs=0 leaves no VRF table; use at least 1 (default 4096)`);
  }
  const total = p.vr_flow_entries + p.vr_oflow_entries;
  const bytes = total * 128;
  const limit = opts.memoryLimit ?? os.totalmem();
  const culprit = origin.vr_oflow_entries && !origin.vr_flow_entries ? 'vr_oflow_entries' : 'vr_flow_entries';
  if (total > MAX_FLOW_TABLE_ENTRIES) {
    throw new UserError(
      `${where(culprit)}: vr_flow_entries + vr_oflow_entries = ${total} entries exceed the emulator's limit of ${MAX_FLOW_TABLE_ENTRIES} (a 4 GiB table); use fewer`,
    );
  }
  if (bytes > limit) {
    throw new UserError(
      `${where(culprit)}: a flow table of ${total} entries needs ${fmtMiB(bytes)} but this host has ${fmtMiB(limit)}; lower vr_flow_entries/vr_oflow_entries`,
    );
  }
  return p;
}

function fmtMiB(b: number): string {
  return `${(b / 1048576).toFixed(0)} MiB`;
}

export interface ParamSources {
  /** --params FILE (default module-params/default.conf under the package). */
  file?: string;
  /** --param name=value, in order. */
  overrides?: string[];
}

/** Read the file and the overrides and resolve them (the usual entry point for the CLI). */
export function loadModuleParams(src: ParamSources, defaultFile: string, opts: ResolveOptions = {}): ModuleParams {
  const file = src.file ?? defaultFile;
  const list = readParamFile(file);
  for (const o of src.overrides ?? []) list.push(parseParamArg(o));
  return resolveParams(list, opts);
}
