/**
 * The `vrouter-emu` command: verbs that mirror the vRouter's own tools (`vrouter --info`, `flow -l`,
 * `dropstats`, `vif --list`) plus the emulator's (`replay`). User errors print one line and exit 2.
 * @module
 */
import { isUserError } from '../errors';
import { loadModuleParams } from '../params/module-params';
import { parseArgs } from './args';
import { StdoutWriter } from './out';
import { defaultParamsFile } from './package-root';
import { REPLAY_OPTS, REPLAY_USAGE, cmdReplay } from './replay';
import { vrouterInfo } from './vrouter-info';

const USAGE = `usage: vrouter-emu <verb> [options]

verbs:
  replay CAPTURE [options]     push a pcap/pcapng capture through the flow engine, then print the
                               figures, the non-zero drop statistics and the flow -l listing
  vrouter --info [--params FILE] [--param name=value]...
                               the module's limits for these parameters, as vrouter --info prints them

  ${REPLAY_USAGE}
`;

function cmdVrouter(argv: string[]): number {
  const u = 'vrouter-emu vrouter --info [--params FILE] [--param name=value]...';
  const p = parseArgs(argv, { '--info': {}, '--params': { value: true }, '--param': { value: true, repeat: true }, '--help': {} }, u);
  if (!p.flags.has('--info') || p.positional.length > 0) {
    process.stderr.write(`Usage:\n${u}\n`);
    return p.flags.has('--help') ? 0 : 1;
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

export function main(argv: string[]): number {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case 'replay':
        return cmdReplay(parseArgs(rest, REPLAY_OPTS, REPLAY_USAGE));
      case 'vrouter':
        return cmdVrouter(rest);
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
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
