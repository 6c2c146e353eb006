/**
 * Real qemu guests on the emulator: two guests (Debian kernel, busybox) ping each other and move a file
 * over TCP (busybox nc) through the flow engine, a guest and a namespace VM talk; flow -l and vif --list
 * show the guests' vifs; the guests' offloads (partial checksums, TSO) are handled; nothing is left.
 */
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { Instance, parseFlowList, startInstance } from '../helpers/instance';
import { Needs, e2e, unmet } from '../helpers/requires';
import { waitFor as waitForCond } from '../helpers/wait';

const ROOT = path.join(__dirname, '..', '..');

// The guest image is built from Debian packages with busybox, cpio and xz (scripts/guest-image.sh).
const NEEDS: Needs = { root: true, tools: ['ip', 'ping', 'qemu-system-x86_64', 'busybox', 'cpio', 'xz'] };

test.before(() => {
  // The guest image (kernel + initramfs from Debian packages) is built once and cached; building it here
  // keeps the instance's start within its readiness timeout.
  if (unmet(NEEDS).length === 0) execFileSync('bash', [path.join(ROOT, 'scripts', 'guest-image.sh')], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600000 });
});

const waitFor = (what: string, cond: () => boolean, ms: number): Promise<void> => waitForCond(cond, { timeoutMs: ms, intervalMs: 250, what });

const consoleOf = (i: Instance, vm: string): string => {
  try {
    return fs.readFileSync(path.join(i.dir, 'console', `${vm}.log`), 'utf8');
  } catch {
    return '';
  }
};

e2e(NEEDS).serial('two qemu guests ping each other and move a file over TCP through the flow engine; a guest and a netns VM talk', async (t) => {
  t.timeout(300000);
  const net = 'net-gq';
  const i = await startInstance({
    networks: [{ name: net, subnet: '10.30.1.0/24', gateway: '10.30.1.1' }],
    vms: [
      { name: 'gqa', ip: '10.30.1.5', network: net, kind: 'qemu', run: 'nc -l -p 5001 > /tmp/rx; echo rx-md5 $(md5sum < /tmp/rx)' },
      {
        name: 'gqb', ip: '10.30.1.6', network: net, kind: 'qemu',
        // Wait for gqa, ping it, send 1 MiB and keep the connection open 8 s (so flow -l sees it
        // established), then ping the netns VM.
        run: [
          'dd if=/dev/urandom of=/tmp/tx bs=1k count=1024 2>/dev/null; echo tx-md5 $(md5sum < /tmp/tx)',
          'i=0; until ping -c 1 -W 1 10.30.1.5 >/dev/null; do i=$((i+1)); [ $i -gt 90 ] && break; done',
          'ping -c 3 10.30.1.5',
          'sleep 1; { cat /tmp/tx; echo tcp-data-sent >&2; sleep 8; } | nc 10.30.1.5 5001; echo nc-done $?',
          'ping -c 2 10.30.1.7',
        ].join('\n'),
      },
      { name: 'gqn', ip: '10.30.1.7', network: net },
    ],
  });
  const pids = [...i.out().matchAll(/qemu pid (\d+)/g)].map((m) => Number(m[1]));
  const taps = [...i.out().matchAll(/^ {2}gq[ab] +qemu \(\w+\) +(tap\S+)/gm)].map((m) => m[1]);
  try {
    t.is(pids.length, 2, 'two guests started');
    t.is(taps.length, 2);
    t.is(i.tool('vm', 'console', 'gqa', '--no-follow').status, 0);
    await waitFor('gqb to send its data', () => consoleOf(i, 'gqb').includes('tcp-data-sent'), 180000);
    // The connection is open: both directions established.
    const tcp = parseFlowList(i.tool('flow', '-l').stdout).filter((f) => f.proto === 6 && (f.dport === 5001 || f.sport === 5001));
    t.is(tcp.length, 2, 'the TCP pair');
    for (const f of tcp) t.regex(f.detail, /TCP:SSrEEr, /, `${f.sip}:${f.sport}`);
    await waitFor('the transfer to finish', () => /nc-done/.test(consoleOf(i, 'gqb')) && /rx-md5/.test(consoleOf(i, 'gqa')), 60000);
    const tx = /tx-md5 (\w+)/.exec(consoleOf(i, 'gqb'))?.[1];
    const rx = /rx-md5 (\w+)/.exec(consoleOf(i, 'gqa'))?.[1];
    t.truthy(tx);
    t.is(rx, tx, 'the receiving guest got the bytes the sender sent (its kernel checked every TCP checksum)');
    t.regex(consoleOf(i, 'gqb'), /nc-done 0/);
    t.regex(consoleOf(i, 'gqb'), /3 packets transmitted, 3 packets received/, 'guest to guest ping');
    await waitFor('gqb to ping the netns VM', () => /2 packets transmitted/.test(consoleOf(i, 'gqb')), 30000);
    t.regex(consoleOf(i, 'gqb'), /2 packets transmitted, 2 packets received/, 'guest to netns VM');
    const fromNs = i.inVm('vm-gqn', ['ping', '-c', '2', '-W', '2', '10.30.1.5']);
    t.is(fromNs.status, 0, `netns VM to guest: ${fromNs.stdout}`);

    // flow -l: the ICMP pair between the guests, keyed on their vifs' nexthops (vif0/3 → nh 10, vif0/4 → 11).
    const icmp = parseFlowList(i.tool('flow', '-l').stdout).filter((f) => f.proto === 1);
    const fwd = icmp.find((f) => f.sip === '10.30.1.6' && f.dip === '10.30.1.5');
    const rev = icmp.find((f) => f.sip === '10.30.1.5' && f.dip === '10.30.1.6');
    t.truthy(fwd && rev, 'the ICMP pair gqb → gqa');
    t.regex(fwd?.detail ?? '', /K\(nh\):11, Action:F/);
    t.regex(rev?.detail ?? '', /K\(nh\):10, Action:F/);
    const vifs = i.tool('vif', '--list').stdout;
    for (const [k, tap] of taps.entries()) {
      const block = new RegExp(`vif0/${3 + k} +OS: ${tap}\\n +Type:Virtual[^]*?RX packets:(\\d+)`).exec(vifs);
      t.truthy(block, `vif0/${3 + k} is ${tap}`);
      t.true(Number(block?.[1]) > 100, `${tap} carried the traffic`);
    }
    const stats = JSON.parse(i.tool('agent', 'stats', '--json').stdout) as { offload: { checksumsCompleted: number; tsoFrames: number; tsoSegments: number; dropped: number } };
    t.true(stats.offload.checksumsCompleted > 0, 'the guests\' partial checksums were completed');
    t.true(stats.offload.tsoSegments >= stats.offload.tsoFrames);
    t.is(stats.offload.dropped, 0);
  } finally {
    await i.stop();
  }
  for (const pid of pids) t.false(fs.existsSync(`/proc/${pid}`) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('qemu'), `qemu ${pid} stopped`);
  for (const tap of taps) t.false(fs.existsSync(`/sys/class/net/${tap}`), `${tap} removed`);
});
