/**
 * src/vcenter/vsphere.ts against a real vCenter simulator (vcsim from govmomi 0.24.2, built by
 * scripts/vcsim.sh), cross-checked with govc; plus the XML helpers and the error paths that need no vcsim.
 */
import test from 'ava';
import * as net from 'net';
import { UserError } from '../../src/errors';
import { VSphere, VimFault, parseXml, xmlEscape } from '../../src/vcenter/vsphere';
import { e2e, unmet } from '../helpers/requires';
import { type Vcsim, type VcsimBinaries, govc, startVcsim, vcsimBinaries, vcsimNeeds } from '../helpers/vcsim';

// ---- no vcsim needed ------------------------------------------------------------------------------

test('xmlEscape escapes the five XML specials', (t) => {
  t.is(xmlEscape(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&apos;');
});

test('parseXml: local names, attributes, entities, CDATA, self-closing and comments', (t) => {
  const doc = parseXml('<?xml version="1.0"?><!-- c --><s:Env xmlns:s="x"><s:Body><r a=\'1\' xsi:type="T">x &amp; &#x41;&#66;</r>' +
    '<e/><c><![CDATA[<raw>]]></c></s:Body></s:Env>');
  t.is(doc.name, 'Env');
  const [r, e, c] = doc.children[0].children;
  t.deepEqual([r.name, r.attrs.a, r.attrs['xsi:type'], r.text], ['r', '1', 'T', 'x & AB']);
  t.is(e.name, 'e');
  t.is(e.children.length, 0);
  t.is(c.text, '<raw>');
  t.throws(() => parseXml('no xml here'), { message: /no root element/ });
});

/** A port where nothing listens (bound, then closed). */
async function deadPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}

test('an unreachable vCenter is a one-line UserError within a second or two', async (t) => {
  const port = await deadPort();
  const t0 = Date.now();
  const e = await t.throwsAsync(VSphere.connect(`https://user:pass@127.0.0.1:${port}/sdk`));
  t.true(e instanceof UserError);
  t.is(e?.message, `vcenter: cannot reach https://127.0.0.1:${port}/sdk (connect ECONNREFUSED): is vCenter (vcsim) running?`);
  t.false(e?.message.includes('pass'), 'the password is not in the message');
  t.true(Date.now() - t0 < 2000);
});

test('a vCenter that accepts and never answers times out (timeoutMs)', async (t) => {
  const socks: net.Socket[] = [];
  const srv = net.createServer((s) => socks.push(s)); // accepts, says nothing: not even the TLS handshake
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    const t0 = Date.now();
    const e = await t.throwsAsync(VSphere.connect(`https://user:pass@127.0.0.1:${port}/sdk`, { timeoutMs: 300 }));
    t.true(e instanceof UserError);
    t.regex(e?.message ?? '', /^vcenter: https:\/\/127\.0\.0\.1:\d+\/sdk did not answer RetrieveServiceContent within 0\.3 s/);
    t.true(Date.now() - t0 < 1500);
  } finally {
    for (const s of socks) s.destroy();
    srv.close();
  }
});

test('URLs without credentials or not https are refused before any request', async (t) => {
  await t.throwsAsync(VSphere.connect('https://127.0.0.1:1/sdk'), { instanceOf: UserError, message: /has no credentials/ });
  await t.throwsAsync(VSphere.connect('http://u:p@127.0.0.1:1/sdk'), { instanceOf: UserError, message: /is not https/ });
  await t.throwsAsync(VSphere.connect('not a url'), { instanceOf: UserError, message: /is not a URL/ });
});

// ---- against vcsim ---------------------------------------------------------------------------------

const needs = vcsimNeeds();
const withVcsim = e2e(needs);
let bin: VcsimBinaries | undefined;
let sim: Vcsim | undefined;
let vs: VSphere | undefined;

test.before(async (t) => {
  // Without the build's tools the vcsim tests skip (or fail in CI) on their own: nothing to start.
  if (unmet(needs).length > 0) return;
  if (needs.tools) t.timeout(600_000, 'building vcsim and govc (scripts/vcsim.sh)');
  bin = await vcsimBinaries();
  sim = await startVcsim(bin);
  vs = await VSphere.connect(sim.url);
});

test.after.always(async () => {
  await vs?.logout();
  await sim?.stop();
});

/** govc's value of one property of /DC0/network/NAME, or null when govc cannot find the object. */
async function govcVlan(name: string): Promise<string | null> {
  const r = await govc(bin as VcsimBinaries, (sim as Vcsim).url, ['object.collect', '-s', `/DC0/network/${name}`, 'config.defaultPortConfig.vlan.vlanId']);
  return r.code === 0 ? r.stdout.trim() : null;
}

withVcsim.serial('findDvs takes a bare name or an inventory path, and names the switches it found otherwise', async (t) => {
  const c = vs as VSphere;
  const byName = await c.findDvs('DVS0');
  t.deepEqual(await c.findDvs('DC0/network/DVS0'), byName);
  t.deepEqual(await c.findDvs('/DC0/network/DVS0'), byName);
  t.deepEqual((await c.listDvs()).map((d) => d.name), ['DVS0']);
  for (const bad of ['DVS9', 'DC0/network/DVS9']) {
    const e = await t.throwsAsync(c.findDvs(bad), { instanceOf: UserError });
    t.is(e?.message, `vcenter: no distributed switch "${bad}" in ${c.where} (found: DVS0); give its name or inventory path, e.g. DC0/network/DVS0`);
  }
});

withVcsim.serial('three port groups with VLANs: read back by the client and by govc', async (t) => {
  const c = vs as VSphere;
  const dvs = await c.findDvs('DVS0');
  const want = [['vn-red', 101], ['vn-green', 2000], ['vn-blue & <co>', 4094]] as const;
  const keys: string[] = [];
  for (const [name, vlan] of want) keys.push(await c.createPortgroup(dvs, name, vlan));
  t.is(new Set(keys).size, 3);
  for (const k of keys) t.regex(k, /^dvportgroup-\d+$/);
  const listed = await c.listPortgroups(dvs);
  for (const [i, [name, vlan]] of want.entries()) {
    t.deepEqual(listed.find((p) => p.name === name), { name, key: keys[i], vlanId: vlan });
    t.is(await govcVlan(name), String(vlan), `govc reads ${name}'s VLAN`);
  }
  // The switch's own port groups are listed too: the uplinks (a trunk, no single VLAN) and DC0_DVPG0.
  t.is(listed.find((p) => /DVUplinks/.test(p.name))?.vlanId, null);
});

withVcsim.serial('a duplicate name surfaces the DuplicateName fault', async (t) => {
  const c = vs as VSphere;
  const dvs = await c.findDvs('DVS0');
  const key = await c.createPortgroup(dvs, 'vn-dup', 300);
  const e = await t.throwsAsync(c.createPortgroup(dvs, 'vn-dup', 301), { instanceOf: VimFault });
  t.is(e?.name, 'VimFault');
  t.is((e as VimFault).fault, 'DuplicateName');
  t.is(e?.message, `vcenter: AddDVPortgroup_Task failed: DuplicateName (name vn-dup, object ${key})`);
  t.is(await govcVlan('vn-dup'), '300', 'the first one is untouched');
  await t.throwsAsync(c.createPortgroup(dvs, 'vn-bad', 4095), { instanceOf: UserError, message: /VLAN id 4095 of port group "vn-bad" is outside 0-4094/ });
});

withVcsim.serial('destroy removes the port group (govc no longer finds it); destroying it again is a fault', async (t) => {
  const c = vs as VSphere;
  const dvs = await c.findDvs('DVS0');
  const key = await c.createPortgroup(dvs, 'vn-gone', 42);
  t.is(await govcVlan('vn-gone'), '42');
  await c.destroyPortgroup(key);
  t.falsy((await c.listPortgroups(dvs)).find((p) => p.name === 'vn-gone'));
  t.is(await govcVlan('vn-gone'), null);
  const e = await t.throwsAsync(c.destroyPortgroup(key), { instanceOf: VimFault });
  t.is((e as VimFault).fault, 'ManagedObjectNotFound');
});

withVcsim.serial('a second session logs in and out on its own', async (t) => {
  const other = await VSphere.connect((sim as Vcsim).url, { timeoutMs: 5000 });
  const dvs = await other.findDvs('DVS0');
  t.true((await other.listPortgroups(dvs)).some((p) => p.name === 'vn-red'));
  await other.logout();
  await other.logout(); // idempotent, never throws
  t.pass();
});
