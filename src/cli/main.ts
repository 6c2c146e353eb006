/**
 * The `vrouter-emu` command: verbs that mirror the vRouter's own tools (`vrouter --info`, `flow -l`,
 * `dropstats`, `vif --list`) plus the emulator's (`replay`). User errors print one line and exit 2.
 * @module
 */
import { COLLECTOR_OPTS, COLLECTOR_USAGE, cmdCollector } from './collector';
import * as fs from 'fs';
import { UserError, isUserError } from '../errors';
import { loadModuleParams } from '../params/module-params';
import { parseArgs } from './args';
import { StdoutWriter } from './out';
import { defaultParamsFile } from '../lib/package-root';
import { REPLAY_OPTS, REPLAY_USAGE, cmdReplay } from './replay';
import { SYNTH_OPTS, SYNTH_USAGE, cmdSynth } from './synth';
import { START_OPTS, START_USAGE, cmdStart } from './start';
import { PLATFORM_OPTS, PLATFORM_USAGE, cmdPlatform } from './platform';
import { SELFTEST_OPTS, SELFTEST_USAGE, cmdSelftest } from './selftest';
import { DEFAULT_SOCKET, controlCall } from './control';
import { TESTBED_OPTS, TESTBED_USAGE, cmdTestbed, testbedSocket } from './testbed';
import { vrouterInfo } from './vrouter-info';
import { cmdVcenterDriver } from './vcenter-driver';
import { PLAN_OPTS, PLAN_USAGE, cmdPlan } from './plan';

const USAGE = `usage: vrouter-emu <verb> [options]

verbs:
  start [options]              run a compute node: VMs (namespaces, qemu guests, attached interfaces), the
                               datapath, the agent
  testbed [options]            run several compute nodes on this host, joined by an emulated fabric (one
                               namespace per node, a bridge, kernel VXLAN VTEPs for bare-metal hosts)
  flow -l [--show-evicted]     the running instance's flow table (R2.22 flow -l)
  vif --list                   its interfaces
  vif --add IFNAME --type virtual --vm NAME [--ip A --mac M --network N]
                               attach a vif to an existing interface (a guest's tap, a veth)
  vif --delete N|IFNAME        detach it, leaving the interface as it was
  vm console NAME              follow a qemu guest's serial console
  dropstats                    its drop counters
  nh --list                    its nexthops (interfaces, tunnels, the VXLAN VRF nexthops)
  mpls --dump                  its incoming MPLS label map
  vxlan --dump                 its VXLAN table (VNI → nexthop)
  rt --dump VRF [--family inet|bridge]
                               a VRF's /32 routes (label, nexthop, stitched MAC) or bridge table
  bgp [--summary] [--json]     its BGP speaker (route_source "bgp"): peers, routes sent and received
  esxi list|vm-create|vm-delete  (start --mode vcenter) the emulated ESXi host's VMs
  port --list|--add|--delete   (start --mode vcenter) the agent's ports of vCenter VMs (VLAN sub-interfaces)
  agent stats [--json]         its agent's flow counters
  agent flows [--json]         its agent's flows: UUIDs, networks, aging table, idle time, policy rule
  agent aging on|off           stop or restart the aging scan (an emulator knob; flows then never age)
  config reload                re-read agent.conf, policies, fat flow, global-vrouter-config (or SIGHUP)
  vrouter --info               its limits; with --params/--param, the limits a parameter file sets
  collector [query]            the flow-record collector (serve, or query what it stored)
  vcenter-driver serve|spawn|destroy|plug-vifs|unplug-vifs|list
                               the vCenter driver: a port group and a VLAN per port, the VM on the ESXi host
  platform check [--root DIR] [--json]
                               which Contrail 2.22 platform this host is, the verdict, the kernel probes
  selftest [--json]            the platform check, a ping through a compute node, a replay (exit 0 = pass)
  replay CAPTURE [options]     push a pcap/pcapng capture through the flow engine offline, then print the
                               figures, the non-zero drop statistics and the flow -l listing
  synth OUT [options]          write a seeded synthetic capture (flows, dns-storm, syn-flood, port-scan); --help
  plan CAPTURE --sweep …       replay it under every combination of table sizes, timeouts, fat flow: the
                               smallest table that drops nothing
The tools take --socket PATH (default ${DEFAULT_SOCKET}), or --node NAME [--testbed P] for a node of a
running testbed (P default vre: /run/vrouter-emu/testbed-P/NAME.sock).

  ${START_USAGE}
  ${TESTBED_USAGE}
  ${REPLAY_USAGE}
  ${PLAN_USAGE}
  ${COLLECTOR_USAGE}
`;

/**
 * The control socket the tool's options name: --socket PATH, or --node NAME [--testbed P] (a node of a
 * running testbed); the default socket otherwise. @returns it and the other arguments.
 */
export function toolSocket(argv: string[]): { socket: string; args: string[] } {
  const args: string[] = [];
  const got = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const m = /^(--socket|--node|--testbed)(?:=(.*))?$/.exec(argv[i]);
    if (!m) {
      args.push(argv[i]);
      continue;
    }
    let v = m[2];
    if (v === undefined) {
      if (i + 1 >= argv.length) throw new UserError(`${m[1]} needs a value`);
      v = argv[++i];
    }
    if (got.has(m[1])) throw new UserError(`${m[1]} given twice`);
    got.set(m[1], v);
  }
  const node = got.get('--node');
  if (node !== undefined && got.has('--socket')) throw new UserError('give --socket PATH or --node NAME, not both');
  if (node === undefined && got.has('--testbed')) throw new UserError(`--testbed ${got.get('--testbed')}: name the node too (--node NAME --testbed P)`);
  const socket = node !== undefined ? testbedSocket(node, got.get('--testbed')) : (got.get('--socket') ?? DEFAULT_SOCKET);
  return { socket, args };
}

/** A vRouter tool on the running instance (flow, vif, dropstats, vrouter). */
async function cmdTool(tool: string, argv: string[]): Promise<number> {
  const { socket, args } = toolSocket(argv);
  const out = new StdoutWriter();
  await controlCall(socket, [tool, ...args], out.write);
  out.flush();
  return 0;
}

/**
 * `vm console NAME [--no-follow]`: a guest's serial console. The instance names the log file; this
 * process prints it and follows it (like tail -f) until interrupted.
 */
async function cmdVm(argv: string[]): Promise<number> {
  const u = 'vrouter-emu vm console NAME [--no-follow] [--socket PATH | --node NAME [--testbed P]]';
  const { socket, args } = toolSocket(argv);
  const p = parseArgs(args, { '--no-follow': {} }, u);
  if (p.positional[0] !== 'console' || p.positional.length !== 2) throw new UserError(`usage: ${u}`);
  let file = '';
  await controlCall(socket, ['vm', 'console-path', p.positional[1]], (s) => {
    file += s;
  });
  file = file.trim();
  let pos = 0;
  const dump = (): void => {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return;
    }
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        if (n <= 0) break;
        pos += n;
        process.stdout.write(buf.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
  };
  dump();
  if (p.flags.has('--no-follow')) return 0;
  return new Promise<number>((resolve) => {
    const t = setInterval(dump, 200);
    process.once('SIGINT', () => {
      clearInterval(t);
      resolve(0);
    });
  });
}

function cmdVrouter(argv: string[]): number | Promise<number> {
  const u = 'vrouter-emu vrouter --info [--socket PATH | --params FILE [--param name=value]...]';
  if (!argv.some((a) => a === '--params' || a.startsWith('--params=') || a === '--param' || a.startsWith('--param='))) {
    if (!argv.includes('--info')) {
      process.stderr.write(`Usage:\n${u}\n`);
      return argv.includes('--help') ? 0 : 2;
    }
    return cmdTool('vrouter', argv);
  }
  const p = parseArgs(argv, { '--info': {}, '--params': { value: true }, '--param': { value: true, repeat: true }, '--help': {} }, u);
  if (!p.flags.has('--info') || p.positional.length > 0) {
    process.stderr.write(`Usage:\n${u}\n`);
    return p.flags.has('--help') ? 0 : 2;
  }
  const warn: string[] = [];
  const params = loadModuleParams({ file: p.opts.get('--params')?.[0], overrides: p.opts.get('--param') }, defaultParamsFile(), {
    warn: (m) => warn.push(m),
  });
  for (const w of warn) process.stderr.write(`vrouter-emu: ${w}\n`);
  const out = new StdoutWriter();
  vrouterInfo(params, out.write);
  out.flush();
  return 0;
}

function userErrorExit(e: unknown): number {
  if (isUserError(e)) {
    process.stderr.write(`vrouter-emu: ${e.message}\n`);
    return 2;
  }
  if (e instanceof RangeError && /Array buffer allocation failed|Invalid array buffer length/i.test(e.message)) {
    process.stderr.write(`vrouter-emu: the flow table could not be allocated (${e.message}); lower vr_flow_entries/vr_oflow_entries\n`);
    return 2;
  }
  throw e;
}

/** Run a verb. @returns the exit status (a promise for the verbs that wait). */
export function main(argv: string[]): number | Promise<number> {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case 'replay':
        return cmdReplay(parseArgs(rest, REPLAY_OPTS, REPLAY_USAGE)).catch(userErrorExit);
      case 'synth':
        return cmdSynth(parseArgs(rest, SYNTH_OPTS, SYNTH_USAGE)).catch(userErrorExit);
      case 'start':
        return cmdStart(parseArgs(rest, START_OPTS, START_USAGE)).catch(userErrorExit);
      case 'testbed':
        return cmdTestbed(parseArgs(rest, TESTBED_OPTS, TESTBED_USAGE)).catch(userErrorExit);
      case 'collector':
        return cmdCollector(parseArgs(rest, COLLECTOR_OPTS, COLLECTOR_USAGE)).catch(userErrorExit);
      case 'flow':
      case 'vif':
      case 'esxi':
      case 'port':
      case 'dropstats':
      case 'agent':
      case 'config':
      case 'nh':
      case 'mpls':
      case 'vxlan':
      case 'rt':
      case 'bgp':
        return cmdTool(verb, rest).catch(userErrorExit);
      case 'vm':
        return cmdVm(rest).catch(userErrorExit);
      case 'plan':
        return cmdPlan(parseArgs(rest, PLAN_OPTS, PLAN_USAGE)).catch(userErrorExit);
      case 'vcenter-driver':
        return cmdVcenterDriver(rest).catch(userErrorExit);
      case 'platform':
        return cmdPlatform(parseArgs(rest, PLATFORM_OPTS, PLATFORM_USAGE)).catch(userErrorExit);
      case 'selftest':
        return cmdSelftest(parseArgs(rest, SELFTEST_OPTS, SELFTEST_USAGE)).catch(userErrorExit);
      case 'vrouter': {
        const r = cmdVrouter(rest);
        return typeof r === 'number' ? r : r.catch(userErrorExit);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return verb === undefined ? 2 : 0;
      default:
        process.stderr.write(`vrouter-emu: unknown verb '${verb}'\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    return userErrorExit(e);
  }
}

/** Run the command line and set the exit status. */
export function runCli(argv: string[]): void {
  const r = main(argv);
  if (typeof r === 'number') process.exitCode = r;
  else
    r.then(
      (code) => {
        process.exitCode = code;
        // start and testbed leave nothing that should keep the process alive once it has cleaned up; systeminformation
        // (platform, selftest) leaves a 30 s timer of its own behind
        if (argv[0] === 'start' || argv[0] === 'testbed' || argv[0] === 'platform' || argv[0] === 'selftest') process.exit(code);
      },
      (e: Error) => {
        process.stderr.write(`${e.stack ?? e.message}\n`);
        process.exit(1);
      },
    );
}

if (require.main === module) runCli(process.argv.slice(2));
