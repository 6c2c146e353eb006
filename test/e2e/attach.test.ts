/**
 * vifs attached to existing interfaces (veth pairs standing in for guests' taps): `vif --add` while
 * traffic runs starts forwarding without a restart, `vif --delete` stops it and leaves the interface as
 * it was found; an attached interface of the topology that vanishes takes its vif down (counted) and is
 * re-attached when it comes back.
 */
import * as fs from 'fs';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import { BIN, sleep, startInstance } from '../helpers/instance';
import test from 'ava';
import { e2e } from '../helpers/requires';
import { waitFor as waitForCond } from '../helpers/wait';

const made: string[] = [];
const kids: ChildProcess[] = [];
test.after.always(() => {
  for (const k of kids) k.kill();
  for (const ns of made) spawnSync('ip', ['netns', 'del', ns]);
});

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

/** A "VM": namespace `ns` whose eth0 (addr, mac, default route via gw) pairs with host-side `host`, left down. */
function vethVm(ns: string, host: string, addr: string, mac: string, gw: string): void {
  if (!fs.existsSync(`/run/netns/${ns}`)) {
    ip('netns', 'add', ns);
    made.push(ns);
  }
  ip('link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  ip('-n', ns, 'link', 'set', 'eth0', 'address', mac);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'link', 'set', 'eth0', 'up');
  ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
  ip('-n', ns, 'route', 'add', 'default', 'via', gw);
}

/** A background ping from `ns`; replies() counts the replies so far. */
function pinger(ns: string, dst: string): { replies: () => number } {
  let out = '';
  const p = spawn('ip', ['netns', 'exec', ns, 'ping', '-i', '0.2', '-W', '1', dst], { stdio: ['ignore', 'pipe', 'ignore'] });
  kids.push(p);
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return { replies: () => (out.match(/bytes from/g) ?? []).length };
}

const waitFor = (what: string, cond: () => boolean, ms: number): Promise<void> => waitForCond(cond, { timeoutMs: ms, intervalMs: 200, what });

const sysfs = (f: string): string => fs.readFileSync(f, 'utf8').trim();
const isUp = (ifname: string): boolean => (parseInt(sysfs(`/sys/class/net/${ifname}/flags`), 16) & 1) === 1;

e2e({ root: true, tools: ['ip', 'ping'] }).serial('vif --add attaches a veth while traffic runs, vif --delete detaches it as it was; a vanished interface goes down and comes back', async (t) => {
  t.timeout(120000);
  const net = 'net-at';
  vethVm('e2e-attv', 'e2eatv', '10.31.1.8', '02:00:0a:1f:01:08', '10.31.1.1');
  const i = await startInstance({
    networks: [{ name: net, subnet: '10.31.1.0/24', gateway: '10.31.1.1' }],
    vms: [
      { name: 'atn', ip: '10.31.1.3', network: net },
      { name: 'atv', ip: '10.31.1.8', network: net, mac: '02:00:0a:1f:01:08', attach: 'e2eatv' },
    ],
  });
  try {
    // The topology's attached interface: brought up, IPv6 off, forwarding.
    t.true(isUp('e2eatv'));
    t.is(sysfs('/proc/sys/net/ipv6/conf/e2eatv/disable_ipv6'), '1');
    t.is(spawnSync('ip', ['netns', 'exec', 'e2e-attv', 'ping', '-c', '2', '-W', '2', '10.31.1.3']).status, 0, 'attached VM pings the netns VM');

    // vif --add while the VM is already pinging: replies start without a restart.
    vethVm('e2e-atrt', 'e2eart', '10.31.1.9', '02:00:0a:1f:01:09', '10.31.1.1');
    t.false(isUp('e2eart'), 'left down before');
    const ping = pinger('e2e-atrt', '10.31.1.3');
    await sleep(1000); // an observation window: what must not happen cannot be waited for
    t.is(ping.replies(), 0, 'no replies before the vif exists');
    const add = i.tool('vif', '--add', 'e2eart', '--type', 'virtual', '--vm', 'atrt', '--ip', '10.31.1.9', '--mac', '02:00:0a:1f:01:09');
    t.is(add.status, 0, add.stderr);
    t.regex(add.stdout, /^vif0\/5 added on e2eart: VM atrt 10\.31\.1\.9/);
    await waitFor('replies through the new vif', () => ping.replies() >= 3, 10000);
    t.regex(i.tool('vif', '--list').stdout, /vif0\/5 +OS: e2eart\n +Type:Virtual HWaddr:00:00:5e:00:01:00/);
    const bad = i.tool('vif', '--add', 'e2eart', '--type', 'virtual', '--vm', 'other', '--ip', '10.31.1.10', '--mac', '02:00:0a:1f:01:0a');
    t.is(bad.status, 2);
    t.regex(bad.stderr, /interface e2eart is already vif0\/5/);
    const missing = i.tool('vif', '--add', 'e2enosuch', '--type', 'virtual', '--vm', 'm', '--ip', '10.31.1.11', '--mac', '02:00:0a:1f:01:0b');
    t.is(missing.status, 2);
    t.is(missing.stderr, 'vrouter-emu: vif --add e2enosuch: interface e2enosuch does not exist; start the guest (or create the interface) first\n');
    const noMac = i.tool('vif', '--add', 'e2eart', '--type', 'virtual', '--vm', 'm', '--ip', '10.31.1.11');
    t.regex(noMac.stderr, /VM m is not in the topology: give its --ip and its NIC's --mac/);
    const outside = i.tool('vif', '--add', 'e2eart', '--vm', 'm', '--ip', '10.99.1.11', '--mac', '02:00:0a:1f:01:0b');
    t.regex(outside.stderr, /10\.99\.1\.11 is not a host address of net-at/);

    // vif --delete: replies stop; the interface is as it was (down, IPv6 as before).
    const del = i.tool('vif', '--delete', '5');
    t.is(del.status, 0, del.stderr);
    await sleep(600); // replies already in flight
    const n = ping.replies();
    await sleep(1500); // an observation window: no reply may come in it
    t.is(ping.replies(), n, 'no replies after vif --delete');
    t.notRegex(i.tool('vif', '--list').stdout, /vif0\/5 /);
    t.false(isUp('e2eart'), 'left down, as found');
    t.is(sysfs('/proc/sys/net/ipv6/conf/e2eart/disable_ipv6'), '0');
    t.is(i.tool('vif', '--delete', '3').status, 2, 'a namespace VM\'s TAP is not an attached interface');

    // The topology's attached interface vanishes: its vif goes down, one RX error; back, re-attached.
    ip('link', 'del', 'e2eatv');
    await waitFor('vif0/4 down', () => /vif0\/4 +OS: NULL/.test(i.tool('vif', '--list').stdout), 5000);
    t.regex(i.tool('vif', '--list').stdout, /vif0\/4 +OS: NULL\n[^]*?RX packets:\d+ +bytes:\d+ errors:1/);
    await waitFor('the log line', () => /vif0\/4 \(e2eatv\) went away/.test(i.out()), 2000);
    vethVm('e2e-attv', 'e2eatv', '10.31.1.8', '02:00:0a:1f:01:08', '10.31.1.1');
    await waitFor('vif0/4 re-attached', () => /vif0\/4 +OS: e2eatv/.test(i.tool('vif', '--list').stdout), 5000);
    t.is(spawnSync('ip', ['netns', 'exec', 'e2e-attv', 'ping', '-c', '2', '-W', '2', '10.31.1.3']).status, 0, 'forwarding again');
  } finally {
    await i.stop();
  }
  t.is(sysfs('/proc/sys/net/ipv6/conf/e2eatv/disable_ipv6'), '0', 'stop leaves the topology\'s interface as found');
});

e2e({ root: true, tools: ['ip'] }).serial('start with an attached interface that does not exist, or an unknown --packet-io: one line, exit 2, nothing left behind', (t) => {
  const dir = fs.mkdtempSync('/tmp/vremu-at-');
  const topo = `${dir}/t.json`;
  fs.writeFileSync(topo, JSON.stringify({
    networks: [{ name: 'nx', subnet: '10.32.1.0/24', gateway: '10.32.1.1' }],
    vms: [{ name: 'atx', ip: '10.32.1.3', network: 'nx' }, { name: 'aty', ip: '10.32.1.4', network: 'nx', attach: 'e2enothere' }],
  }));
  const r = spawnSync(process.execPath, [BIN, 'start', '--topology', topo, '--socket', `${dir}/s.sock`], { encoding: 'utf8' });
  t.is(r.status, 2);
  t.is(r.stderr, 'vrouter-emu: interface e2enothere (VM aty) does not exist; start the guest (or create the interface) first, or remove "attach" from the topology\n');
  t.false(fs.existsSync('/run/netns/vm-atx'));
  // A read path that does not exist: the option is named, with the ones that do.
  const b = spawnSync(process.execPath, [BIN, 'start', '--topology', topo, '--socket', `${dir}/s.sock`, '--packet-io', 'mmap'], { encoding: 'utf8' });
  t.is(b.status, 2);
  t.is(b.stderr, 'vrouter-emu: --packet-io mmap: expected ring (the default), ring-v3 or recvmmsg\n');
  t.false(fs.existsSync('/run/netns/vm-atx'));
  t.false(fs.existsSync(`${dir}/s.sock`));
  fs.rmSync(dir, { recursive: true, force: true });
});
