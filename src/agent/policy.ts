/**
 * Network policy at flow setup: each virtual network's attached policies compiled into an ACL as the
 * schema transformer does, and matched as the agent does (reference vrouter-agent.md §7.1–§7.4).
 *
 * Compilation, per network with at least one policy: the rules of its policies in sequence order, each
 * `<>` rule also mirrored (addresses and ports swapped); then the implicit rules: my network → my network
 * pass; for each rule a deny of any traffic between its address pair, both ways; then any → any pass.
 * A network without policies has no ACL: implicit allow. A match is first-match-wins; protocol any matches
 * every protocol; ports are TCP's and UDP's (other protocols match as port 0, ICMP skips them); ICMP and
 * DNS (UDP 53) to or from the network's
 * own gateway are always allowed.
 * @module
 */
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../dp/defs';
import type { Address, NetworkPolicy, PolicyRule } from './contrail-config';
import type { Network } from '../lib/topology-types';

/** Pseudo rule UUIDs the agent reports (FlowTable: 1 implicit allow, 2 implicit deny, 3 gateway ICMP/DNS). */
export const UUID_NOT_EVALUATED = '00000000-0000-0000-0000-000000000000';
export const UUID_IMPLICIT_ALLOW = '00000000-0000-0000-0000-000000000001';
export const UUID_IMPLICIT_DENY = '00000000-0000-0000-0000-000000000002';
export const UUID_GATEWAY = '00000000-0000-0000-0000-000000000003';

/** One compiled ACL entry. */
interface AclEntry {
  rule: PolicyRule;
  src: Address[];
  dst: Address[];
  srcPorts: [number, number][];
  dstPorts: [number, number][];
}

/** The result of matching a flow against a network's ACL. */
export interface PolicyVerdict {
  pass: boolean;
  log: boolean;
  /** The matching rule's UUID, or a pseudo-UUID. */
  uuid: string;
}

/** What the matcher needs to know about an endpoint. */
export interface Endpoint {
  ip: number;
  /** fq-name of the endpoint's network, or '' when outside every network. */
  vn: string;
  port: number;
}

const ALL_PORTS: [number, number][] = [[0, 65535]];
const ANY: Address[] = [{ kind: 'any' }];

const implicitRule = (uuid: string, pass: boolean): PolicyRule => ({
  uuid, bidir: false, proto: -1, src: ANY, dst: ANY, srcPorts: ALL_PORTS, dstPorts: ALL_PORTS, pass, log: false,
});

export class PolicyEngine {
  private readonly acls = new Map<string, AclEntry[]>();

  constructor(networks: Network[], policies: Map<string, NetworkPolicy>) {
    for (const nw of networks) {
      if (nw.policies.length === 0) continue;
      const acl: AclEntry[] = [];
      const pairs: [Address[], Address[]][] = [];
      for (const name of nw.policies) {
        const pol = policies.get(name);
        if (!pol) continue;
        for (const rule of pol.rules) {
          acl.push({ rule, src: rule.src, dst: rule.dst, srcPorts: rule.srcPorts, dstPorts: rule.dstPorts });
          if (rule.bidir) acl.push({ rule, src: rule.dst, dst: rule.src, srcPorts: rule.dstPorts, dstPorts: rule.srcPorts });
          pairs.push([rule.src, rule.dst]);
        }
      }
      const local: Address[] = [{ kind: 'local' }];
      acl.push({ rule: implicitRule(UUID_IMPLICIT_ALLOW, true), src: local, dst: local, srcPorts: ALL_PORTS, dstPorts: ALL_PORTS });
      const deny = implicitRule(UUID_IMPLICIT_DENY, false);
      for (const [a, b] of pairs) {
        acl.push({ rule: deny, src: a, dst: b, srcPorts: ALL_PORTS, dstPorts: ALL_PORTS });
        acl.push({ rule: deny, src: b, dst: a, srcPorts: ALL_PORTS, dstPorts: ALL_PORTS });
      }
      acl.push({ rule: implicitRule(UUID_IMPLICIT_ALLOW, true), src: ANY, dst: ANY, srcPorts: ALL_PORTS, dstPorts: ALL_PORTS });
      this.acls.set(nw.fqName, acl);
    }
  }

  /** Whether a network has an ACL (at least one policy attached). */
  hasAcl(vn: string): boolean {
    return this.acls.has(vn);
  }

  /** Whether a pass rule of network `a`'s policies names network `b`: the condition for routes between them. */
  references(a: string, b: string): boolean {
    const acl = this.acls.get(a);
    if (!acl) return false;
    // Only a network named explicitly connects (as the schema transformer does): "any" and subnets do not.
    const names = (xs: Address[]): boolean => xs.some((x) => x.kind === 'vn' && x.vn === b);
    return acl.some((e) => e.rule.uuid !== UUID_IMPLICIT_ALLOW && e.rule.uuid !== UUID_IMPLICIT_DENY && e.rule.pass && (names(e.src) || names(e.dst)));
  }

  /**
   * Match a flow against the ACL of network `aclVn` (the source network's for the flow's policy, the
   * destination's for out_policy). Networks without an ACL allow everything (implicit allow).
   */
  match(aclVn: string, proto: number, src: Endpoint, dst: Endpoint, gateway: number): PolicyVerdict {
    // ICMP and DNS to or from the network's default gateway are always allowed.
    if ((proto === IPPROTO_ICMP || (proto === IPPROTO_UDP && (src.port === 53 || dst.port === 53))) &&
        (src.ip === gateway || dst.ip === gateway)) {
      return { pass: true, log: false, uuid: UUID_GATEWAY };
    }
    const acl = this.acls.get(aclVn);
    if (!acl) return { pass: true, log: false, uuid: UUID_IMPLICIT_ALLOW };
    // Ports are TCP's and UDP's; other protocols match as port 0, and ICMP skips the port check.
    const ports = proto === IPPROTO_TCP || proto === IPPROTO_UDP;
    const sp = ports ? src.port : 0;
    const dp = ports ? dst.port : 0;
    for (const e of acl) {
      if (e.rule.proto >= 0 && e.rule.proto !== proto) continue;
      if (!addrMatch(e.src, src, aclVn) || !addrMatch(e.dst, dst, aclVn)) continue;
      if (proto !== IPPROTO_ICMP && (!portMatch(e.srcPorts, sp) || !portMatch(e.dstPorts, dp))) continue;
      return { pass: e.rule.pass, log: e.rule.log, uuid: e.rule.uuid };
    }
    // ACLs present and nothing matched: implicit deny.
    return { pass: false, log: false, uuid: UUID_IMPLICIT_DENY };
  }
}

function addrMatch(list: Address[], ep: Endpoint, aclVn: string): boolean {
  for (const a of list) {
    if (a.kind === 'any') return true;
    if (a.kind === 'local' && ep.vn === aclVn) return true;
    if (a.kind === 'vn' && ep.vn === a.vn) return true;
    if (a.kind === 'subnet') {
      const mask = a.len === 0 ? 0 : (0xffffffff << (32 - a.len)) >>> 0;
      if (((ep.ip & mask) >>> 0) === a.net) return true;
    }
  }
  return false;
}

function portMatch(ranges: [number, number][], port: number): boolean {
  for (const [s, e] of ranges) if (port >= s && port <= e) return true;
  return false;
}
