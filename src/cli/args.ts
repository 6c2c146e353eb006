/**
 * A small command-line parser: `--name value`, `--name=value`, repeatable options, flags, positionals.
 * Unknown options are user errors naming the option and the verb's usage.
 * @module
 */
import { UserError } from '../errors';

export interface OptSpec {
  /** Takes a value. */
  value?: boolean;
  /** May be given several times (values collected in order). */
  repeat?: boolean;
  /** Other spellings, e.g. "-l". */
  alias?: string[];
}

export interface Parsed {
  opts: Map<string, string[]>;
  flags: Set<string>;
  positional: string[];
}

/** Parse `argv` against `spec` (keys are canonical names like "--params"). */
export function parseArgs(argv: string[], spec: Record<string, OptSpec>, usage: string): Parsed {
  const byName = new Map<string, string>();
  for (const [k, s] of Object.entries(spec)) {
    byName.set(k, k);
    for (const a of s.alias ?? []) byName.set(a, k);
  }
  const out: Parsed = { opts: new Map(), flags: new Set(), positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      out.positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 && a.startsWith('--') ? a.slice(0, eq) : a;
    const key = byName.get(name);
    if (key === undefined) throw new UserError(`unknown option ${name}; usage: ${usage}`);
    const s = spec[key];
    if (!s.value) {
      if (eq > 0 && a.startsWith('--')) throw new UserError(`${name} takes no value; usage: ${usage}`);
      out.flags.add(key);
      continue;
    }
    let v: string;
    if (eq > 0 && a.startsWith('--')) v = a.slice(eq + 1);
    else if (i + 1 < argv.length) v = argv[++i];
    else throw new UserError(`${name} needs a value; usage: ${usage}`);
    const list = out.opts.get(key) ?? [];
    if (!s.repeat && list.length > 0) throw new UserError(`${name} given twice; usage: ${usage}`);
    list.push(v);
    out.opts.set(key, list);
  }
  return out;
}

/** One option's value, or undefined. */
export function opt(p: Parsed, name: string): string | undefined {
  return p.opts.get(name)?.[0];
}

/** A non-negative integer option. */
export function optInt(p: Parsed, name: string, fallback: number): number {
  const v = opt(p, name);
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v)) throw new UserError(`${name} ${v}: expected a non-negative integer`);
  return Number(v);
}

/** An on/off option. */
export function optOnOff(p: Parsed, name: string, fallback: boolean): boolean {
  const v = opt(p, name);
  if (v === undefined) return fallback;
  if (v === 'on' || v === '1' || v === 'true') return true;
  if (v === 'off' || v === '0' || v === 'false') return false;
  throw new UserError(`${name} ${v}: expected on or off`);
}
