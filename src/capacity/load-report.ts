/**
 * The report's code is a bundle of its own, dist/report.cjs, loaded only by --report and --svg: vega and
 * vega-lite are 2 MB of the CLI's 5 MB, and a Node process parsing them holds ~25 MB more for its whole
 * life (the replay of a big capture is measured against the flow table's size; BENCHMARKS.md).
 * Under tsx (the tests) the source is loaded instead.
 * @module
 */
import * as path from 'path';
import { distFile } from '../lib/package-root';

type Report = typeof import('./report');

export function loadReport(): Report {
  // A computed name: esbuild must not pull the module into the bundle that loads it.
  const file = __filename.endsWith('.ts') ? path.join(__dirname, 'report.ts') : distFile('report.cjs');
  return require(file) as Report;
}
