/** `vrouter-emu synth`: the file and its one-line summary, gzip, the replay of what it wrote, errors, the documentation. */
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { SYNTH_HELP, SYNTH_OPTS, SYNTH_USAGE } from '../../src/cli/synth';
import { CaptureReader } from '../../src/io/pcap';
import { cli } from '../helpers/capture';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-synth-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const out = (name: string): string => path.join(dir, name);

test('writes the capture, prints one line of figures; the same seed writes the same bytes; .gz is the same capture compressed', (t) => {
  const args = ['--flows', '50', '--frames', '2000', '--seed', '5', '--duration', '2'];
  const a = cli(['synth', out('a.pcap'), ...args]);
  t.is(a.status, 0, a.stderr);
  t.regex(a.stdout, /^\S+a\.pcap: 2000 frames, 50 flows, \d+ bytes, [\d.]+ s \(pcap, file \d+ bytes\)\n$/);
  t.is(cli(['synth', out('b.pcap'), ...args]).status, 0);
  t.true(fs.readFileSync(out('a.pcap')).equals(fs.readFileSync(out('b.pcap'))));
  const gz = cli(['synth', out('a.pcap.gz'), ...args]);
  t.regex(gz.stdout, /\(pcap, gzip, file \d+ bytes\)/);
  t.true(zlib.gunzipSync(fs.readFileSync(out('a.pcap.gz'))).equals(fs.readFileSync(out('a.pcap'))));
  t.is(cli(['synth', out('c.pcapng'), ...args]).status, 0);
  const r = new CaptureReader(out('c.pcapng'));
  t.is(r.format, 'pcapng');
  r.close();
  t.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('partial')), [], 'no temporary file left');
});

test('a gzip synth capture replays through vrouter-emu replay with two entries per flow', (t) => {
  const f = out('mix.pcapng.gz');
  const s = cli(['synth', f, '--scenario', 'flows,dns-storm', '--flows', '100', '--dns-queries', '300', '--frames', '5000', '--duration', '3']);
  t.is(s.status, 0, s.stderr);
  t.regex(s.stdout, /5000 frames, 400 flows/);
  const r = cli(['replay', f, '--param', 'vr_flow_entries=4096', '--param', 'vr_oflow_entries=512']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /: 5000 frames over /);
  t.regex(r.stdout, /flows created 800 \(Created 400 by the datapath on a miss, Added 400 by the agent\)/);
});

test('bad input: one line, exit 2, no file', (t) => {
  for (const [args, re] of [
    [['synth'], /synth needs one output file; usage: vrouter-emu synth OUT/],
    [['synth', out('x.pcap'), '--scenario', 'flood'], /--scenario flood: unknown scenario 'flood'; choose from flows, dns-storm, syn-flood, port-scan, or mix for all/],
    [['synth', out('x.pcap'), '--flows', 'many'], /--flows many: expected a number/],
    [['synth', out('x.pcap'), '--format', 'erf'], /--format erf: expected pcap or pcapng/],
    [['synth', out('x.pcap'), '--frames', '10', '--flows', '20'], /--frames 10: leaves 10 frames for 20 flows/],
    [['synth', out('x.pcap'), '--bogus'], /unknown option --bogus/],
    [['synth', '/no/such/dir/x.pcap'], /\/no\/such\/dir\/x\.pcap: the directory \/no\/such\/dir does not exist/],
  ] as [string[], RegExp][]) {
    const r = cli(args);
    t.is(r.status, 2, args.join(' '));
    t.regex(r.stderr, re);
    t.is(r.stderr.trimEnd().split('\n').length, 1, args.join(' '));
  }
  t.false(fs.existsSync(out('x.pcap')));
});

test('every option is in the usage line, the --help text and the README section', (t) => {
  const h = cli(['synth', '--help']);
  t.is(h.status, 0);
  t.is(h.stdout, SYNTH_HELP);
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const at = readme.indexOf('### Synthetic captures');
  t.true(at > readme.indexOf('## Replaying a capture'), 'the section is under "Replaying a capture"');
  const section = readme.slice(at, readme.indexOf('\n## ', at));
  for (const o of Object.keys(SYNTH_OPTS)) {
    if (o === '--help') continue;
    t.true(SYNTH_USAGE.includes(`[${o} `), `${o} in the usage`);
    t.regex(SYNTH_HELP, new RegExp(`^ +${o} `, 'm'), `${o} in --help`);
    t.true(section.includes(`\`${o}`), `${o} in the README`);
  }
});
