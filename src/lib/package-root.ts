/**
 * Where the package's files are (module-params/, dist/, build/) whether the code runs from the bundle
 * in dist/ or from src/ under tsx. Shared by every layer (a leaf module, no project imports).
 * @module
 */
import * as fs from 'fs';
import * as path from 'path';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let d = __dirname;
  for (let k = 0; k < 6; k++) {
    const pj = path.join(d, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'vrouter-emu') return (root = d);
      } catch {
        // keep looking
      }
    }
    d = path.dirname(d);
  }
  return (root = process.cwd());
}

/** module-params/default.conf of the package (the R2.22 defaults). */
export function defaultParamsFile(): string {
  return path.join(packageRoot(), 'module-params', 'default.conf');
}

/** A file of the runtime bundle (dist/NAME): next to the running bundle, or in the package's dist/. */
export function distFile(name: string): string {
  const here = path.join(__dirname, name);
  return fs.existsSync(here) ? here : path.join(packageRoot(), 'dist', name);
}
