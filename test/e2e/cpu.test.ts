/**
 * End to end, as root: `start --cpu 1 --isolate-cpu` — the datapath thread alone on CPU 1, every other
 * thread of the process (the agent's, Node's helpers, the workers started later) off it, and traffic
 * forwarded as without it.
 */
import * as fs from 'fs';
import * as os from 'os';
import { startInstance, twoVms } from '../helpers/instance';
import { e2e } from '../helpers/requires';

/** A task's allowed CPUs (/proc/PID/task/TID/status, "0,2-3" form) as a set. */
function allowedCpus(pid: number, tid: string): Set<number> {
  const list = /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? '';
  const out = new Set<number>();
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a; c <= (b ?? a); c++) out.add(c);
  }
  return out;
}

e2e({ root: true, tools: ['ip', 'ping'] }).serial('--cpu 1 --isolate-cpu: the datapath thread alone on CPU 1, the other threads off it, VMs still reach each other', async (t) => {
  t.timeout(60000);
  if (os.cpus().length < 2) {
    t.log('this host has one CPU: there is no other CPU to isolate the datapath from');
    t.pass();
    return;
  }
  const i = await startInstance(twoVms('ic', 43), ['--cpu', '1', '--isolate-cpu']);
  try {
    t.regex(i.out(), /datapath thread on CPU 1 \(pinned, the other threads off it\)/);
    const pid = i.proc.pid as number;
    const sets = fs.readdirSync(`/proc/${pid}/task`).map((tid) => [...allowedCpus(pid, tid)].join(','));
    t.is(sets.filter((s) => s === '1').length, 1, `one thread (the datapath's) allowed CPU 1 only: ${sets.join(' | ')}`);
    t.true(sets.filter((s) => s !== '1').every((s) => !s.split(',').includes('1')), `no other thread may run on CPU 1: ${sets.join(' | ')}`);
    t.true(sets.length > 4, 'the agent, the datapath, the netns worker and Node\'s helpers');
    t.regex(i.inVm('vm-ica', ['ping', '-c', '3', '-i', '0.2', '-W', '1', '10.43.1.4']).stdout, / 3 received/);
  } finally {
    t.is(await i.stop(), 0);
  }
});
