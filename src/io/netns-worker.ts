/**
 * Configures one VM interface inside its network namespace, through rtnetlink (the `netlink` package):
 * this thread enters the namespace with setns() (which only moves the calling thread), opens an rtnetlink
 * socket there, and renames the TAP to eth0, sets its MAC and MTU, brings lo and eth0 up, adds the
 * address and the default route via the gateway. Entry point of dist/netns-worker.cjs.
 * @module
 */
import { parentPort, workerData } from 'worker_threads';
import { loadNative } from './native';

export interface NetnsJob {
  /** /run/netns/NAME */
  nsPath: string;
  /** The TAP's current name (it keeps it when moved into the namespace). */
  ifname: string;
  newName: string;
  mac: number[];
  mtu: number;
  ip: number[];
  prefixLen: number;
  gateway: number[];
}

// Netlink message flags for new objects (linux/netlink.h).
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;

async function configure(j: NetnsJob): Promise<void> {
  const nat = loadNative();
  nat.setns(j.nsPath, nat.constants.CLONE_NEWNET);
  // Loaded after setns: the socket is created in the namespace this thread is now in.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { createRtNetlink } = require('netlink') as typeof import('netlink');
  const rt = createRtNetlink();
  try {
    const links = await rt.getLinks();
    const tap = links.find((l) => l.attrs.ifname === j.ifname);
    const lo = links.find((l) => l.attrs.ifname === 'lo');
    if (!tap || tap.data.index === undefined) throw new Error(`${j.ifname} is not in ${j.nsPath}`);
    const index = tap.data.index;
    await rt.setLink({ index }, { ifname: j.newName, address: Buffer.from(j.mac), mtu: j.mtu });
    if (lo?.data.index !== undefined) await rt.setLink({ index: lo.data.index, change: { up: true }, flags: { up: true } });
    await rt.setLink({ index, change: { up: true }, flags: { up: true } });
    await rt.newAddress(
      { family: 2, prefixlen: j.prefixLen, index },
      { address: Buffer.from(j.ip), local: Buffer.from(j.ip) },
      { flags: NLM_F_CREATE | NLM_F_EXCL },
    );
    await rt.newRoute(
      { family: 2, dstLen: 0, table: 254, protocol: 'BOOT', scope: 'UNIVERSE', type: 'UNICAST' },
      { gateway: Buffer.from(j.gateway), oif: index },
      { flags: NLM_F_CREATE | NLM_F_EXCL },
    );
  } finally {
    rt.socket.close();
  }
}

if (parentPort) {
  const port = parentPort;
  configure(workerData as NetnsJob).then(
    () => port.postMessage({ ok: true }),
    (e: Error) => port.postMessage({ ok: false, message: e.message }),
  );
}
