/**
 * `npx vrouter-emu start` under a process supervisor: SIGTERM goes to the `npx` process, whose wrapper
 * does not pass it on; the instance sees its launcher go and stops as on SIGTERM, removing its namespaces.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { nsExists, twoVms } from '../helpers/instance';
import { e2e } from '../helpers/requires';

const ROOT = path.join(__dirname, '..', '..');

e2e({ root: true, tools: ['ip'] })('SIGTERM to npx stops the instance and removes its namespaces', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-npx-'));
  const topo = path.join(dir, 'topology.json');
  fs.writeFileSync(topo, JSON.stringify(twoVms('npx', 31)));
  const npx = spawn('npx', ['vrouter-emu', 'start', '--topology', topo, '--socket', path.join(dir, 's.sock')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  npx.stdout.on('data', (d: Buffer) => (out += d.toString()));
  npx.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = (ms: number, cond: () => boolean): Promise<boolean> => new Promise((resolve) => {
    const t0 = Date.now();
    const tick = (): void => {
      if (cond()) resolve(true);
      else if (Date.now() - t0 > ms) resolve(false);
      else setTimeout(tick, 100);
    };
    tick();
  });
  t.true(await deadline(30000, () => out.includes('Stop with Ctrl-C')), out);
  t.true(nsExists('vm-npxa') && nsExists('vm-npxb'));
  npx.kill('SIGTERM');
  t.true(await deadline(15000, () => !nsExists('vm-npxa') && !nsExists('vm-npxb')), `namespaces still there:\n${out}`);
  t.true(await deadline(5000, () => fs.readdirSync(dir).every((f) => f !== 's.sock')), 'control socket removed');
  fs.rmSync(dir, { recursive: true, force: true });
});
