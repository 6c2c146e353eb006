/**
 * A small cluster for the testbed's end-to-end tests (test/e2e/cluster.test.ts): two nodes, one network
 * with a configured VNI, a VM per node, one bare-metal host; every namespace starts with the prefix.
 * Run as a program (`node -r tsx/cjs test/helpers/cluster-underlay.ts PREFIX`), it builds that underlay, records a
 * stand-in node process (a sleep), prints "ready" and waits to be killed: a crashed testbed.
 */
import { spawn } from 'child_process';
import { Cluster, clusterPlan, procStart } from '../../src/io/cluster';
import { clusterTopologyFrom } from '../../src/cli/testbed';

export function smallCluster(prefix: string): Record<string, unknown> {
  return {
    nodes: [{ name: 'n1', fabric_ip: '192.168.60.11/24' }, { name: 'n2', fabric_ip: '192.168.60.12/24' }],
    networks: [{ name: 'blue', subnet: '10.60.1.0/24', gateway: '10.60.1.1', vxlan_network_identifier: 4242 }],
    vms: [
      { name: `${prefix}a`, ip: '10.60.1.3', network: 'blue', node: 'n1', namespace: `${prefix}-vma` },
      { name: `${prefix}b`, ip: '10.60.1.4', network: 'blue', node: 'n2', namespace: `${prefix}-vmb` },
    ],
    bare_metal: [{ name: 'bm', vtep_ip: '192.168.60.21', ip: '10.60.1.10', network: 'blue', namespace: `${prefix}-bms`, vtep_namespace: `${prefix}-vtep` }],
    global_vrouter_config: { vxlan_network_identifier_mode: 'configured' },
  };
}

export function smallClusterPlan(prefix: string) {
  return clusterPlan(clusterTopologyFrom(smallCluster(prefix), '(test cluster)'), prefix, '(test cluster)');
}

if (require.main === module) {
  const prefix = process.argv[2];
  const c = new Cluster(smallClusterPlan(prefix));
  c.checkFree();
  c.setupUnderlay();
  const stand = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
  c.state.nodes.push({ name: 'n1', pid: stand.pid as number, start: procStart(stand.pid as number) ?? '' });
  c.save();
  process.stdout.write(`ready ${stand.pid}\n`);
  setInterval(() => undefined, 1000);
}
