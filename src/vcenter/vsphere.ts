/**
 * A small vSphere (vim25) SOAP client: just what a Contrail 2.x vCenter setup does to a distributed switch
 * — find the DVS, create a distributed port group with a VLAN, list the port groups with their VLANs,
 * destroy one. Tested against VMware's vCenter simulator (vcsim, govmomi 0.24.2; scripts/vcsim.sh).
 *
 * Why our own: the registry's vSphere clients (`vsphere` 0.0.1, `node-vsphere-soap` 0.0.2-5) are a thin
 * layer over `soap` 0.8.0 from 2015 and fetch the whole WSDL; the dozen calls needed here are short fixed
 * envelopes, so this module builds them by hand (with escaping), parses answers with a tolerant parser of
 * its own (below, ~70 lines) and talks HTTPS through Node's `https` — no dependency, Node 16 APIs only.
 *
 * The session is the `vmware_soap_session` cookie that Login sets. Every request has a deadline
 * (`timeoutMs`, default 10 s) and every task wait one too (`taskTimeoutMs`, default 60 s), so nothing
 * hangs on a stuck vCenter. vCenter's certificate is usually self-signed: it is not verified.
 *
 * Errors: an unreachable or silent vCenter, a URL without credentials, an unknown switch and a bad VLAN id
 * are `UserError`s (one line); a SOAP fault or a failed task is a `VimFault` carrying the fault's type
 * (`DuplicateName`, `InvalidLogin`, …) and its message. @module
 */
import * as https from 'https';
import { UserError } from '../errors';

/** A managed object reference: `<_this type="Folder">group-d1</_this>`. */
export interface MoRef {
  type: string;
  value: string;
}

/** A distributed port group as listPortgroups reads it. */
export interface Portgroup {
  /** config.name */
  name: string;
  /** The port group's managed object id (`dvportgroup-42`), what destroyPortgroup takes. */
  key: string;
  /** config.defaultPortConfig.vlan.vlanId, or null when the VLAN policy is a trunk or a private VLAN. */
  vlanId: number | null;
}

/** A distributed switch found in the inventory. */
export interface Dvs {
  ref: MoRef;
  name: string;
}

export interface ConnectOptions {
  /** Deadline of each HTTP request, in ms (default 10000). */
  timeoutMs?: number;
  /** Deadline of a task (create, destroy), in ms (default 60000). */
  taskTimeoutMs?: number;
}

/** A vSphere fault: a SOAP fault answer, or the error of a task that ended in state "error". */
export class VimFault extends Error {
  /**
   * @param fault the fault type, e.g. `DuplicateName`, `ManagedObjectNotFound`, `InvalidLogin`
   * @param detail the fault's localized message (faultstring / localizedMessage)
   * @param method the call that failed (`AddDVPortgroup_Task`, `Login`, …)
   * @param fields the fault object's simple fields (DuplicateName: `name`, `object`)
   */
  constructor(readonly fault: string, readonly detail: string, readonly method: string, readonly fields: Record<string, string> = {}) {
    // vcsim's localized messages are placeholders ("*types.DuplicateName"): say what the fields say instead.
    const fs = Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(', ');
    const said = detail && !/^\*types\./.test(detail) ? `: ${detail}` : fs ? ` (${fs})` : '';
    super(`vcenter: ${method} failed: ${fault}${said}`);
    this.name = 'VimFault';
  }
}

// ---------------------------------------------------------------------------------------------------
// XML: escaping for what we send, a tolerant reader for what we get back.

/** Text or attribute value escaped for XML. */
export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

/** One element of a parsed answer. Names are local (prefix dropped); attributes keep their qualified name. */
export interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  /** The element's own character data, entity-decoded (for leaf elements, its value). */
  text: string;
}

function xmlUnescape(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
    }
    return ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[e];
  });
}

const localName = (q: string): string => q.slice(q.indexOf(':') + 1);

/**
 * Parses an XML document into a tree (namespaces are not resolved: vim25 answers use one default
 * namespace plus `xsi:`/`soapenv:` prefixes). Declarations, comments, processing instructions and
 * DOCTYPEs are skipped; CDATA is kept as text. Mismatched closing tags close up to the matching element.
 * @throws Error if there is no root element
 */
export function parseXml(doc: string): XmlNode {
  const top: XmlNode = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlNode[] = [top];
  let i = 0;
  while (i < doc.length) {
    const lt = doc.indexOf('<', i);
    const cur = stack[stack.length - 1];
    if (lt < 0) { cur.text += xmlUnescape(doc.slice(i)); break; }
    if (lt > i) cur.text += xmlUnescape(doc.slice(i, lt));
    if (doc.startsWith('<!--', lt)) { i = skipPast(doc, lt, '-->'); continue; }
    if (doc.startsWith('<![CDATA[', lt)) {
      const end = doc.indexOf(']]>', lt);
      cur.text += doc.slice(lt + 9, end < 0 ? doc.length : end);
      i = end < 0 ? doc.length : end + 3;
      continue;
    }
    if (doc[lt + 1] === '?' || doc[lt + 1] === '!') { i = skipPast(doc, lt, '>'); continue; }
    const gt = doc.indexOf('>', lt);
    if (gt < 0) break;
    const tag = doc.slice(lt + 1, gt);
    i = gt + 1;
    if (tag[0] === '/') {
      const name = localName(tag.slice(1).trim());
      const at = stack.map((n) => n.name).lastIndexOf(name);
      if (at > 0) stack.length = at;
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^\s*([^\s/>]+)/.exec(body);
    if (!m) continue;
    const node: XmlNode = { name: localName(m[1]), attrs: {}, children: [], text: '' };
    const attrRe = /([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
    attrRe.lastIndex = m[0].length;
    for (let a = attrRe.exec(body); a; a = attrRe.exec(body)) node.attrs[a[1]] = xmlUnescape(a[2] ?? a[3]);
    cur.children.push(node);
    if (!selfClosing) stack.push(node);
  }
  if (top.children.length === 0) throw new Error('not an XML document (no root element)');
  return top.children[0];
}

function skipPast(doc: string, from: number, end: string): number {
  const e = doc.indexOf(end, from);
  return e < 0 ? doc.length : e + end.length;
}

const child = (n: XmlNode | undefined, name: string): XmlNode | undefined => n?.children.find((c) => c.name === name);
const kids = (n: XmlNode | undefined, name: string): XmlNode[] => (n ? n.children.filter((c) => c.name === name) : []);
const textOf = (n: XmlNode | undefined): string => (n ? n.text.trim() : '');
/** The xsi:type of an element (whatever the prefix is called). */
const xsiType = (n: XmlNode | undefined): string => {
  if (!n) return '';
  for (const k of Object.keys(n.attrs)) if (k.endsWith(':type')) return localName(n.attrs[k]);
  return '';
};
/** A fault object's leaf fields (name → text), e.g. DuplicateName's name and object. */
const leafFields = (n: XmlNode | undefined): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const c of n?.children ?? []) if (c.children.length === 0 && textOf(c)) out[c.name] = textOf(c);
  return out;
};
const moref = (n: XmlNode | undefined): MoRef | undefined => (n ? { type: n.attrs.type ?? '', value: textOf(n) } : undefined);

// Building envelopes: each argument is a ready XML fragment; `ref` and `text` escape.
const ref = (tag: string, r: MoRef): string => `<${tag} type="${xmlEscape(r.type)}">${xmlEscape(r.value)}</${tag}>`;
const text = (tag: string, v: string | number | boolean): string => `<${tag}>${xmlEscape(String(v))}</${tag}>`;

/**
 * A PropertyFilterSpec reading `paths` of objects of `type`: of `obj` itself, or, with `traverse`, of the
 * objects one step away along `traverse.path` (the start object skipped, the objects reached reported).
 */
function filterSpec(obj: MoRef, type: string, paths: string[], traverse?: { type: string; path: string }): string {
  const sel = traverse
    ? `<selectSet xsi:type="TraversalSpec">${text('type', traverse.type)}${text('path', traverse.path)}${text('skip', false)}</selectSet>`
    : '';
  return `<specSet><propSet>${text('type', type)}${paths.map((p) => text('pathSet', p)).join('')}</propSet>` +
    `<objectSet>${ref('obj', obj)}${text('skip', !!traverse)}${sel}</objectSet></specSet>`;
}

/** An object's properties as RetrievePropertiesEx returns them: path → the `val` element. */
interface ObjectContent {
  obj: MoRef;
  props: Map<string, XmlNode>;
}

// ---------------------------------------------------------------------------------------------------

// vCenter matches subtypes in a ContainerView's type list and a PropertySpec's type; vcsim 0.24 does not,
// so both the base type and VMware's own switch type (the one vCenter creates) are named.
const DVS_TYPES = ['DistributedVirtualSwitch', 'VmwareDistributedVirtualSwitch'];

/** Where a URL points, without its credentials (for messages). */
function bareUrl(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname}`;
}

/**
 * A logged-in vSphere session. Create it with `connect`; end it with `logout`.
 */
export class VSphere {
  private cookie = '';
  private readonly agent: https.Agent;
  private version = '';
  private readonly timeoutMs: number;
  private readonly taskTimeoutMs: number;
  /** The ServiceContent's references (rootFolder, propertyCollector, searchIndex, viewManager, …). */
  private sc = new Map<string, MoRef>();

  private constructor(private readonly url: URL, readonly where: string, opts: ConnectOptions) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.taskTimeoutMs = opts.taskTimeoutMs ?? 60_000;
    // Keep-alive: a port group costs several round trips; one TLS handshake for the session, not per call.
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 4, rejectUnauthorized: false });
  }

  /**
   * Connects and logs in: RetrieveServiceContent, then SessionManager.Login with the URL's credentials.
   * @param url like `https://user:pass@127.0.0.1:8989/sdk`
   * @throws UserError when the URL is not usable or vCenter cannot be reached; VimFault if Login fails
   */
  static async connect(url: string, opts: ConnectOptions = {}): Promise<VSphere> {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new UserError(`vcenter: "${url}" is not a URL; give one like https://user:pass@vcenter.example/sdk`);
    }
    if (u.protocol !== 'https:') throw new UserError(`vcenter: ${bareUrl(u)} is not https: vCenter's SOAP API is https://HOST/sdk`);
    if (!u.username) throw new UserError(`vcenter: ${bareUrl(u)} has no credentials; give them as https://user:pass@${u.host}${u.pathname}`);
    const vs = new VSphere(u, bareUrl(u), opts);
    try {
      const sc = child(await vs.call('RetrieveServiceContent', ref('_this', { type: 'ServiceInstance', value: 'ServiceInstance' })), 'returnval');
      for (const c of sc?.children ?? []) if (c.attrs.type) vs.sc.set(c.name, { type: c.attrs.type, value: textOf(c) });
      // Speak the server's API version from here on (the SOAPAction header selects it).
      vs.version = textOf(child(child(sc, 'about'), 'apiVersion'));
      await vs.call('Login', ref('_this', vs.need('sessionManager')) +
        text('userName', decodeURIComponent(u.username)) + text('password', decodeURIComponent(u.password)));
    } catch (e) {
      vs.agent.destroy();
      throw e;
    }
    return vs;
  }

  /** Ends the session (SessionManager.Logout) and closes the connections. Never throws. */
  async logout(): Promise<void> {
    try {
      if (this.cookie) await this.call('Logout', ref('_this', this.need('sessionManager')));
    } catch {
      // The session ends anyway when vCenter times it out; nothing to do for the caller.
    } finally {
      this.cookie = '';
      this.agent.destroy();
    }
  }

  /** Every distributed switch in the inventory, with its name (a ContainerView over the root folder). */
  async listDvs(): Promise<Dvs[]> {
    const view = moref(child(await this.call('CreateContainerView', ref('_this', this.need('viewManager')) +
      ref('container', this.need('rootFolder')) + DVS_TYPES.map((t) => text('type', t)).join('') + text('recursive', true)), 'returnval'));
    if (!view) throw new Error('vcenter: CreateContainerView returned no view');
    try {
      const objs: ObjectContent[] = [];
      for (const t of DVS_TYPES) objs.push(...await this.retrieve(filterSpec(view, t, ['name'], { type: 'ContainerView', path: 'view' })));
      // vCenter reports its switches under both types: once each.
      const seen = new Set<string>();
      return objs.filter((o) => !seen.has(o.obj.value) && !!seen.add(o.obj.value)).map((o) => ({ ref: o.obj, name: textOf(o.props.get('name')) }));
    } finally {
      await this.call('DestroyView', ref('_this', view)).catch(() => undefined);
    }
  }

  /**
   * The distributed switch named `name` — a bare name (`DVS0`) or an inventory path (`DC0/network/DVS0`,
   * a leading `/` allowed; looked up with SearchIndex.FindByInventoryPath).
   * @throws UserError naming the switch and listing those that exist
   */
  async findDvs(name: string): Promise<MoRef> {
    if (name.includes('/')) {
      const path = name.replace(/^\/+/, '');
      const answer = await this.call('FindByInventoryPath', ref('_this', this.need('searchIndex')) + text('inventoryPath', path));
      const found = moref(child(answer, 'returnval'));
      if (found && /DistributedVirtualSwitch$/.test(found.type)) return found;
    }
    const all = await this.listDvs();
    const hit = all.find((d) => d.name === name);
    if (hit) return hit.ref;
    const names = all.map((d) => d.name).sort();
    throw new UserError(`vcenter: no distributed switch "${name}" in ${this.where} ` +
      `(${names.length ? `found: ${names.join(', ')}` : 'it has none'}); give its name or inventory path, e.g. DC0/network/DVS0`);
  }

  /**
   * Creates a distributed port group on `dvs` whose ports carry `vlanId` (an early-binding
   * DVPortgroupConfigSpec of one port), and waits for the task.
   *
   * The call is AddDVPortgroup_Task (a list of specs; here one), not CreateDVPortgroup_Task (one spec):
   * both exist on vCenter since 4.0 with the same DVPortgroupConfigSpec, and vcsim 0.24.2 implements only
   * the first ("MethodNotFound … does not implement: CreateDVPortgroup_Task"). Neither task has a result
   * worth relying on, so the new port group's id is read back by name.
   * @returns the port group's managed object id (`dvportgroup-42`)
   * @throws VimFault e.g. `DuplicateName` when the name is taken; UserError for a VLAN id outside 0-4094
   */
  async createPortgroup(dvs: MoRef, name: string, vlanId: number): Promise<string> {
    if (!Number.isInteger(vlanId) || vlanId < 0 || vlanId > 4094) {
      throw new UserError(`vcenter: VLAN id ${vlanId} of port group "${name}" is outside 0-4094`);
    }
    // Element order follows the XML schema's sequences (vCenter validates it): DVPortgroupConfigSpec is
    // name, numPorts, …, defaultPortConfig, …, type; VMwareDVSPortSetting's vlan comes after the
    // DVPortSetting fields (none set); InheritablePolicy's `inherited` is required and comes first.
    const spec = `<spec>${text('name', name)}${text('numPorts', 1)}` +
      '<defaultPortConfig xsi:type="VMwareDVSPortSetting"><vlan xsi:type="VmwareDistributedVirtualSwitchVlanIdSpec">' +
      `${text('inherited', false)}${text('vlanId', vlanId)}</vlan></defaultPortConfig>${text('type', 'earlyBinding')}</spec>`;
    await this.runTask('AddDVPortgroup_Task', ref('_this', dvs) + spec);
    const pg = (await this.listPortgroups(dvs)).find((p) => p.name === name);
    if (!pg) throw new Error(`vcenter: AddDVPortgroup_Task succeeded but port group "${name}" is not on the switch`);
    return pg.key;
  }

  /** The switch's port groups (its uplink port group included) with their default VLAN. */
  async listPortgroups(dvs: MoRef): Promise<Portgroup[]> {
    const objs = await this.retrieve(filterSpec(dvs, 'DistributedVirtualPortgroup', ['config.name', 'config.defaultPortConfig'],
      { type: 'DistributedVirtualSwitch', path: 'portgroup' }));
    return objs.map((o) => {
      const vlan = child(o.props.get('config.defaultPortConfig'), 'vlan');
      const id = xsiType(vlan) === 'VmwareDistributedVirtualSwitchVlanIdSpec' ? Number(textOf(child(vlan, 'vlanId'))) : NaN;
      return { name: textOf(o.props.get('config.name')), key: o.obj.value, vlanId: Number.isInteger(id) ? id : null };
    });
  }

  /**
   * Destroys a port group (Destroy_Task) and waits for the task.
   * @param key the port group's managed object id, as createPortgroup and listPortgroups give it
   * @throws VimFault e.g. `ManagedObjectNotFound` for an unknown key, `ResourceInUse` when ports are in use
   */
  async destroyPortgroup(key: string): Promise<void> {
    await this.runTask('Destroy_Task', ref('_this', { type: 'DistributedVirtualPortgroup', value: key }));
  }

  // -------------------------------------------------------------------------------------------------

  private need(name: string): MoRef {
    const r = this.sc.get(name);
    if (!r) throw new Error(`vcenter: ${this.where}'s ServiceContent has no ${name} (not a vCenter?)`);
    return r;
  }

  /**
   * Starts a task and waits until it ends, polling info.state with RetrievePropertiesEx (20 ms, doubling
   * up to 500 ms: vcsim finishes in a few ms, vCenter in a second or so).
   * @throws VimFault with the task's fault type and localizedMessage when it ends in "error"
   */
  private async runTask(method: string, args: string): Promise<void> {
    const task = moref(child(await this.call(method, args), 'returnval'));
    if (!task) throw new Error(`vcenter: ${method} returned no task`);
    const deadline = Date.now() + this.taskTimeoutMs;
    for (let wait = 20; ; wait = Math.min(wait * 2, 500)) {
      const [o] = await this.retrieve(filterSpec(task, 'Task', ['info.state', 'info.error']));
      const state = textOf(o?.props.get('info.state'));
      if (state === 'success') return;
      if (state === 'error') {
        const err = o.props.get('info.error');
        const fault = child(err, 'fault');
        throw new VimFault(xsiType(fault) || fault?.name || 'TaskError', textOf(child(err, 'localizedMessage')), method, leafFields(fault));
      }
      if (Date.now() + wait > deadline) {
        throw new UserError(`vcenter: ${method} on ${this.where} did not finish within ${this.taskTimeoutMs / 1000} s (task ${task.value} is ${state || 'unknown'})`);
      }
      await new Promise((res) => setTimeout(res, wait));
    }
  }

  /** RetrievePropertiesEx plus ContinueRetrievePropertiesEx until the result has no more pages. */
  private async retrieve(specSet: string): Promise<ObjectContent[]> {
    const pc = this.need('propertyCollector');
    const out: ObjectContent[] = [];
    let rv = child(await this.call('RetrievePropertiesEx', ref('_this', pc) + specSet + '<options/>'), 'returnval');
    for (;;) {
      for (const oc of kids(rv, 'objects')) {
        const props = new Map<string, XmlNode>();
        for (const p of kids(oc, 'propSet')) {
          const val = child(p, 'val');
          if (val) props.set(textOf(child(p, 'name')), val);
        }
        const obj = moref(child(oc, 'obj'));
        if (obj) out.push({ obj, props });
      }
      const token = textOf(child(rv, 'token'));
      if (!token) return out;
      rv = child(await this.call('ContinueRetrievePropertiesEx', ref('_this', pc) + text('token', token)), 'returnval');
    }
  }

  /**
   * One SOAP call: POSTs the envelope, keeps the session cookie, and returns the Body's response element.
   * @throws UserError if vCenter cannot be reached, does not answer within timeoutMs or is not a SOAP endpoint;
   *   VimFault for a SOAP fault
   */
  private async call(method: string, args: string): Promise<XmlNode> {
    const envelope = '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" ' +
      'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' +
      `<soapenv:Body><${method} xmlns="urn:vim25">${args}</${method}></soapenv:Body></soapenv:Envelope>`;
    const { status, body } = await this.post(method, envelope);
    let doc: XmlNode | undefined;
    try {
      doc = parseXml(body);
    } catch {
      doc = undefined;
    }
    const answer = child(doc, 'Body')?.children[0];
    if (answer && answer.name === 'Fault') {
      // vim25 puts the typed fault in <detail>: <DuplicateNameFault xsi:type="DuplicateName">…
      const d = child(answer, 'detail')?.children[0];
      const fault = xsiType(d) || (d ? d.name.replace(/Fault$/, '') : '') || textOf(child(answer, 'faultcode'));
      throw new VimFault(fault, textOf(child(answer, 'faultstring')), method, leafFields(d));
    }
    if (status !== 200 || !answer) {
      throw new UserError(`vcenter: ${this.where} answered ${method} with HTTP ${status} and no SOAP response: is it vCenter's SOAP endpoint (https://HOST/sdk)?`);
    }
    return answer;
  }

  private post(method: string, envelope: string): Promise<{ status: number; body: string }> {
    const u = this.url;
    const payload = Buffer.from(envelope, 'utf8');
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (f: () => void): void => {
        if (!settled) { settled = true; clearTimeout(timer); f(); }
      };
      const req = https.request({
        host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || 443, path: u.pathname + u.search, method: 'POST', agent: this.agent,
        headers: {
          'Content-Type': 'text/xml; charset=utf-8',
          'Content-Length': payload.length,
          SOAPAction: `"urn:vim25${this.version ? `/${this.version}` : ''}"`,
          ...(this.cookie ? { Cookie: this.cookie } : {}),
        },
      }, (res) => {
        // Login sets the session; later answers may renew it.
        for (const c of res.headers['set-cookie'] ?? []) {
          const m = /^(vmware_soap_session=[^;]*)/.exec(c);
          if (m) this.cookie = m[1];
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (b: Buffer) => {
          size += b.length;
          // No answer of the calls made here comes near this; a runaway one must not eat the memory.
          if (size > 64 * 1024 * 1024) req.destroy(new Error(`answer to ${method} larger than 64 MiB`));
          else chunks.push(b);
        });
        res.on('end', () => done(() => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') })));
        res.on('error', (e) => done(() => reject(this.netError(e))));
      });
      // A deadline on the whole exchange (a socket timeout only catches idleness).
      const timer = setTimeout(() => {
        done(() => reject(new UserError(`vcenter: ${this.where} did not answer ${method} within ${this.timeoutMs / 1000} s: is vCenter (vcsim) running and reachable?`)));
        req.destroy();
      }, this.timeoutMs);
      req.on('error', (e) => done(() => reject(this.netError(e))));
      req.end(payload);
    });
  }

  private netError(e: Error & { code?: string; syscall?: string }): Error {
    if (e instanceof UserError) return e;
    const what = e.code ? `${e.syscall ? `${e.syscall} ` : ''}${e.code}` : e.message;
    return new UserError(`vcenter: cannot reach ${this.where} (${what}): is vCenter (vcsim) running?`);
  }
}
