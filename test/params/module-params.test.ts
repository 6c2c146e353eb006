import test from 'ava';
import { MODULE_PARAM_DEFAULTS, parseParamText, resolveParams, loadModuleParams } from '../../src/params/module-params';
import { userErrorOf as errorOf } from '../helpers/user-error';
import { cli, tmpFile } from '../helpers/capture';

test('modprobe.d syntax: comments, blank lines, merged options lines, later wins, other modules ignored', (t) => {
  const text = [
    '# vrouter',
    '',
    'options vrouter vr_flow_entries=1024 vr_oflow_entries=64 # trailing comment',
    'options nf_conntrack hashsize=4096',
    'alias vrouter vrouter',
    'options vrouter vr_flow_entries=2048 \\',
    '   vr_vrfs=0x100',
    'options vrouter vrouter-dbg=1',
  ].join('\n');
  const p = resolveParams(parseParamText(text, 'x.conf'));
  t.is(p.vr_flow_entries, 2048);
  t.is(p.vr_oflow_entries, 64);
  t.is(p.vr_vrfs, 256, '0x hex as kstrtouint reads it');
  t.is(p.vrouter_dbg, 1, 'dashes and underscores are the same in parameter names');
  t.is(p.vr_mpls_labels, MODULE_PARAM_DEFAULTS.vr_mpls_labels);
});

test('the shipped default.conf holds the R2.22 defaults', (t) => {
  const p = loadModuleParams({}, 'module-params/default.conf');
  t.deepEqual(p, { ...MODULE_PARAM_DEFAULTS });
  t.is(p.vr_flow_entries, 524288);
  t.is(p.vr_oflow_entries, 8192);
});

test('vr_flow_entries is rounded up to a multiple of 4, with a note', (t) => {
  const notes: string[] = [];
  const p = resolveParams(parseParamText('options vrouter vr_flow_entries=1001', 'a.conf'), { warn: (m) => notes.push(m) });
  t.is(p.vr_flow_entries, 1004);
  t.regex(notes[0], /a\.conf:1: vr_flow_entries=1001 rounded up to 1004/);
});

test('vr_oflow_entries=0 means no overflow entries', (t) => {
  t.is(resolveParams(parseParamText('options vrouter vr_oflow_entries=0', 'a')).vr_oflow_entries, 0);
});

test('errors name the file, the line and the parameter', (t) => {
  t.is(
    errorOf(() => resolveParams(parseParamText('\noptions vrouter vr_flow_entrys=4', 'p.conf'))),
    "p.conf:2: unknown vrouter module parameter 'vr_flow_entrys' (did you mean vr_flow_entries?)",
  );
  t.regex(errorOf(() => resolveParams(parseParamText('options vrouter vr_vrfs=-1', 'p.conf'))), /^p\.conf:1: vr_vrfs=-1 is not a non-negative integer/);
  t.regex(errorOf(() => resolveParams(parseParamText('options vrouter vr_nexthops=12k', 'p.conf'))), /^p\.conf:1: vr_nexthops=12k is not a non-negative integer/);
  t.regex(errorOf(() => resolveParams(parseParamText('options vrouter vr_vrfs=65537', 'p.conf'))), /^p\.conf:1: vr_vrfs=65537 exceeds the module's maximum of 65536/);
  t.regex(errorOf(() => resolveParams(parseParamText('options vrouter vr_flow_entries', 'p.conf'))), /^p\.conf:1: 'vr_flow_entries' is not name=value/);
  t.regex(
    errorOf(() => resolveParams(parseParamText('options vrouter vr_flow_entries=30000000', 'p.conf'), { memoryLimit: 2 * 2 ** 30 })),
    /^p\.conf:1: a flow table of 30008192 entries needs 3663 MiB but this host has 2048 MiB; lower vr_flow_entries/,
  );
  t.regex(
    errorOf(() => resolveParams(parseParamText('options vrouter vr_flow_entries=4000000000', 'p.conf'))),
    /^p\.conf:1: vr_flow_entries \+ vr_oflow_entries = 4000008192 entries exceed the emulator's limit of 33554431 \(a 4 GiB table\)/,
  );
  t.regex(errorOf(() => resolveParams(parseParamText('options vrouter vr_oflow_entries=99999999999', 'p.conf'))), /larger than an unsigned int/);
  t.regex(errorOf(() => resolveParams(parseParamText('options vrouter vr_flow_entries=33554432', 'p.conf'))), /exceed the emulator's limit of 33554431/);
  t.regex(errorOf(() => loadModuleParams({ file: '/nonexistent.conf' }, 'x')), /^\/nonexistent\.conf: no such module-parameter file/);
});

test('the CLI: --param overrides the file; a bad parameter is one line and exit status 2', (t) => {
  const f = tmpFile('v.conf', 'options vrouter vr_flow_entries=2048 vr_oflow_entries=16\n');
  const ok = cli(['vrouter', '--info', '--params', f, '--param', 'vr_oflow_entries=32']);
  t.is(ok.status, 0);
  t.regex(ok.stdout, /^Flow Table limit {13}2048$/m);
  t.regex(ok.stdout, /^Flow Table overflow limit {4}32$/m);
  t.regex(ok.stdout, /^vRouter module version {7}\S+ \(Built by \S+@\S+ on .+\)$/m);
  const bad = cli(['vrouter', '--info', '--params', f, '--param', 'vr_flow_entrie=1']);
  t.is(bad.status, 2);
  t.is(bad.stdout, '');
  t.is(bad.stderr, "vrouter-emu: --param vr_flow_entrie=1: unknown vrouter module parameter 'vr_flow_entrie' (did you mean vr_flow_entries?)\n");
  const missing = cli(['vrouter', '--info', '--params', '/no/such.conf']);
  t.is(missing.status, 2);
  t.is(missing.stderr.split('\n').length, 2, 'one line');
});

test('vrouter --info prints the R2.22 limits table with the default parameters', (t) => {
  const r = cli(['vrouter', '--info', '--params', 'module-params/default.conf']);
  t.is(r.status, 0);
  t.is(
    r.stdout.split('\n').slice(1).join('\n'),
    [
      'Interfaces limit             4352',
      'VRF tables limit             4096',
      'NextHops limit               65536',
      'MPLS Labels limit            5120',
      'Bridge Table limit           262144',
      'Bridge Table Overflow limit  4096',
      'Flow Table limit             524288',
      'Flow Table overflow limit    8192',
      'Mirror entries limit         255',
      '',
    ].join('\n'),
  );
});

test('the tools without a running instance: one line, exit 2', (t) => {
  for (const args of [['vrouter', '--info'], ['flow', '-l'], ['vif', '--list'], ['dropstats']]) {
    const r = cli([...args, '--socket', '/tmp/vrouter-emu-none.sock']);
    t.is(r.status, 2, args.join(' '));
    t.is(r.stdout, '');
    t.is(r.stderr, 'vrouter-emu: no vrouter-emu instance at /tmp/vrouter-emu-none.sock; start one with: sudo vrouter-emu start (or give --socket PATH)\n');
  }
});
