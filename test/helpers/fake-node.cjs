#!/usr/bin/env node
// A stand-in for `vrouter-emu start --node NAME` in the testbed's end-to-end tests: run where the node
// would run (`ip netns exec P-NODE node fake-node.cjs start --topology F --node NAME --socket S …`), it
// checks that it is in a namespace with the fabric interface, answers tool requests on the socket with one
// line naming itself, and exits on SIGTERM (unless FAKE_NODE_MODE=stubborn: then only SIGKILL stops it;
// FAKE_NODE_MODE=fail: it exits 3 at once, after a line on stderr).
'use strict';
const fs = require('fs');
const net = require('net');

const argv = process.argv.slice(2);
const arg = (k) => argv[argv.indexOf(k) + 1];
const node = arg('--node');
const socket = arg('--socket');
if (process.env.FAKE_NODE_MODE === 'fail') {
  process.stderr.write(`fake node ${node}: failing on purpose\n`);
  process.exit(3);
}
const ifs = fs.readdirSync('/sys/class/net');
const server = net.createServer((c) => {
  let buf = '';
  c.setEncoding('utf8');
  c.on('data', (d) => {
    buf += d;
    const nl = buf.indexOf('\n');
    if (nl < 0) return;
    const req = JSON.parse(buf.slice(0, nl));
    c.end(`{"status":0}\nfake node ${node} (interfaces ${ifs.join(',')}): ${req.argv.join(' ')}\n`);
  });
  c.on('error', () => undefined);
});
try {
  fs.rmSync(socket, { force: true });
} catch (e) {
  // none
}
server.listen(socket, () => process.stdout.write(`fake node ${node} on ${socket} with ${argv.join(' ')}\n`));
process.on('SIGTERM', () => {
  if (process.env.FAKE_NODE_MODE === 'stubborn') return;
  server.close();
  fs.rmSync(socket, { force: true });
  process.exit(0);
});
